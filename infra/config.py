"""StackConfig: the typed, validated settings of one environment (stacks/Pulumi.<stack>.yaml).

Each section of the stack file is a pydantic model whose fields are the file's keys (camelCase aliases): a key no
model declares is refused, a value is checked where its field is declared, and every problem is reported at once as
`modelplane:<key path>: <what is wrong, naming the fix>`, so a reviewer fixes a config in one round trip and nothing
is planned from a config that is wrong. Every key but `project` has a default that suits a dev stack.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from infra.gke.catalogue import CATALOGUE, cpu_machine_problem, machine_problem
from infra.gke.locations import default_zones, region_problem, zones_problem
from modelplane.api.common import GPU_TYPES
from modelplane.images import (
    BUILDER_IMAGE,
    DIGEST_PINNED,
    NOTEBOOK_IMAGE,
    SERVER_IMAGE,
)
from modelplane.layout import BUCKET_ROOTS, BUILD_POOL, SYSTEM_POOL, GpuPool
from modelplane.names import BUILD_NAMESPACE, SYSTEM_NAMESPACE

NAMESPACE = "modelplane"  # the Pulumi project name: config keys are `modelplane:<key>`
PULUMI_NAMESPACE = "pulumi"  # Pulumi's own settings (`pulumi:tags`, ...): the engine's to read, not ours to refuse

RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
DISK_TYPES = ("pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced")
BINARY_AUTHORIZATION_MODES = ("enforce", "dryrun", "off")
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", SYSTEM_NAMESPACE, BUILD_NAMESPACE,
                       "gmp-system", "gmp-public", "gke-managed-system")
RESERVED_POOL_NAMES = (SYSTEM_POOL, BUILD_POOL)  # the CPU pools' names: a GPU pool cannot take them
# GKE's queued provisioning (Dynamic Workload Scheduler) for the GPUs it serves that way and this stack offers:
# cloud.google.com/kubernetes-engine/docs/how-to/provisioningrequest (A100, H100; L4 and T4 are easy to get anyway).
QUEUED_PROVISIONING_GPUS = ("nvidia-tesla-a100", "nvidia-a100-80gb", "nvidia-h100-80gb")

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DNS_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
_IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9](:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_MEMBER_RE = re.compile(r"^(user|group):[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_IMAGE_PATTERN_RE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._/*@:-]+$")
_SECURITY_GROUP_RE = re.compile(r"^(gke-security-groups@[a-z0-9.-]+\.[a-z]{2,})?$")  # or none
_RRULE_RE = re.compile(r"^FREQ=")

# The longest suffix appended to the cluster name for a service account id ("-operator"); GCP caps ids at 30.
_MAX_CLUSTER_NAME = 30 - len("-operator")
# The longest tenant name: the tenant's image repository is `<clusterName>-<tenant>`, at most 63 characters.
MAX_TENANT_NAME = 63 - _MAX_CLUSTER_NAME - 1


class ConfigError(Exception):
    """All problems of a stack config, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack config:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class _Scope:
    """What sections need from the stack as a whole, passed to validation as its context. StackConfig validates its
    fields in declaration order and records these as they pass, so the sections declared after them can default
    to them and be checked against them (a GPU pool's zones, the bucket's location, the operator image)."""

    stack: str
    project: str | None = None
    region: str | None = None
    zones: tuple[str, ...] = ()
    cluster_name: str | None = None

    @property
    def registry(self) -> str | None:
        """The stack's platform image repository, once the names it is made of are valid."""
        if self.project and self.region and self.cluster_name:
            return f"{self.region}-docker.pkg.dev/{self.project}/{self.cluster_name}"
        return None


def _scope(context: Any) -> _Scope:
    if not isinstance(context, _Scope):
        raise TypeError("validate a stack config with parse_stack_config, which gives it the stack as context")
    return context


def _raise_if(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


def _check(problem: Callable[[Any], str | None]) -> AfterValidator:
    """A field check: `problem` names what is wrong with a value, or returns None."""
    def validate(value: Any) -> Any:
        _raise_if(problem(value))
        return value
    return AfterValidator(validate)


def within(low: int, high: int) -> AfterValidator:
    return _check(lambda v: None if low <= v <= high else f"{v} is out of range; use {low}..{high}")


def one_of(allowed: tuple[str, ...]) -> AfterValidator:
    return _check(lambda v: None if v in allowed else f"{v!r} is not allowed; use one of {', '.join(allowed)}")


def _dns_label_problem(value: str, max_len: int) -> str | None:
    if len(value) > max_len or not _DNS_LABEL_RE.match(value):
        return (f"{value!r} must be lower-case letters, digits and '-', start with a letter, "
                f"at most {max_len} characters")
    return None


def dns_label(max_len: int) -> AfterValidator:
    return _check(lambda v: _dns_label_problem(v, max_len))


def matching(pattern: re.Pattern[str], message: str) -> AfterValidator:
    """A check that the value matches `pattern`; `message` may name the value as {v!r}."""
    return _check(lambda v: None if pattern.match(v) else message.format(v=v))


def _int_from_text(value: Any) -> Any:
    """`pulumi config set` stores scalars as text: "2" is the integer 2. Nothing else converts (not 2.5, not true)."""
    return int(value) if isinstance(value, str) and re.fullmatch(r"-?\d+", value) else value


def _bool_from_text(value: Any) -> Any:
    """Pulumi's text `true` and `false` are booleans; nothing else converts (not `yes`, not 1)."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


Str = Annotated[str, Strict()]
Int = Annotated[int, Strict(), BeforeValidator(_int_from_text)]
Bool = Annotated[bool, Strict(), BeforeValidator(_bool_from_text)]


def _cidr_problem(value: str) -> str | None:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        return f"{value!r} is not a CIDR block such as 10.0.0.0/20"
    return None


def _pinned_problem(value: str) -> str | None:
    if not _IMAGE_RE.match(value):
        return f"{value!r} is not an image reference such as repo/name:tag@sha256:<digest>"
    if not re.search(DIGEST_PINNED, value):
        return (f"{value!r} is not pinned by digest; append @sha256:<digest> (crane digest {value} prints it): "
                "a tag can be moved to other code")
    return None


def tenant_name_problem(name: str) -> str | None:
    """Why `name` cannot be a tenant: a system namespace, or a top-level prefix of the bucket layout (a tenant
    named `uploads` would be granted every tenant's build uploads)."""
    if name in RESERVED_NAMESPACES:
        return f"{name!r} is a system namespace; give ML users a namespace of their own"
    if name in BUCKET_ROOTS:
        return f"{name!r} is a top-level folder of the artifacts bucket ({', '.join(BUCKET_ROOTS)}); pick another name"
    return None


ProjectId = Annotated[Str, matching(_PROJECT_RE, "{v!r} is not a GCP project id (6-30 lower-case letters, digits, "
                                                  "'-')")]
Cidr = Annotated[Str, _check(_cidr_problem)]
CpuMachineType = Annotated[Str, _check(cpu_machine_problem)]
CpuPoolSize = Annotated[Int, within(1, 100)]
CpuDiskSize = Annotated[Int, within(30, 65536)]
GpuPoolName = Annotated[Str, dns_label(24), _check(
    lambda v: f"{v!r} is the name of a CPU pool; pick another (not {', '.join(RESERVED_POOL_NAMES)})"
    if v in RESERVED_POOL_NAMES else None)]
SoftDeleteDays = Annotated[Int, _check(lambda v: None if v == 0 or 7 <= v <= 90 else f"{v}: use 0 (off) or 7..90")]
Rfc3339 = Annotated[Str, matching(_TIME_RE, "{v!r} is not an RFC 3339 UTC time such as 2026-01-03T02:00:00Z")]
Rrule = Annotated[Str, matching(_RRULE_RE, "{v!r} is not an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=SA,SU")]
TenantName = Annotated[Str, dns_label(MAX_TENANT_NAME), _check(tenant_name_problem)]
Member = Annotated[Str, matching(_MEMBER_RE, "{v!r} is not an IAM principal such as user:ada@example.com or "
                                             "group:ml-team@example.com")]
SecurityGroup = Annotated[Str, matching(_SECURITY_GROUP_RE, "{v!r} must be the group named gke-security-groups@"
                                                            "<your domain> (GKE requires that name)")]
ImagePattern = Annotated[Str, matching(_IMAGE_PATTERN_RE, "{v!r} is not an image name pattern such as "
                                       "us-docker.pkg.dev/my-project/images/* or docker.io/library/python@*")]
PinnedImage = Annotated[Str, _check(_pinned_problem)]
LabelKey = Annotated[Str, matching(_LABEL_KEY_RE, "a GCP label key is lower-case letters, digits, '_' or '-', "
                                                  "starting with a letter, at most 63 characters")]
LabelValue = Annotated[Str, matching(_LABEL_VALUE_RE, "{v!r}: a GCP label value is lower-case letters, digits, '_' "
                                                      "or '-', at most 63 characters")]


class _Section(BaseModel):
    """A mapping of the stack file: immutable (hashable where its fields are), keys as written in the file
    (camelCase), unknown keys refused, and defaults validated like written values (they may derive from the
    stack)."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, validate_default=True)


class AuthorizedNetwork(_Section):
    cidr: Cidr = Field(description="an address range such as 203.0.113.0/24 (your office or CI egress range)")
    name: Str = ""  # shown in the console; defaults to the range

    @field_validator("name")
    @classmethod
    def _name_or_range(cls, name: str, info: ValidationInfo) -> str:
        return name or info.data.get("cidr", "")


class NetworkRanges(_Section):
    subnet_cidr: Cidr = "10.10.0.0/20"
    pods_cidr: Cidr = "10.16.0.0/14"
    services_cidr: Cidr = "10.20.0.0/20"

    @field_validator("pods_cidr", "services_cidr")
    @classmethod
    def _disjoint(cls, cidr: str, info: ValidationInfo) -> str:
        """A range may not overlap the ones declared before it, so each overlap is named once, at the later key."""
        for name, earlier in info.data.items():
            if ipaddress.ip_network(cidr).overlaps(ipaddress.ip_network(earlier)):
                raise ValueError(f"{cidr} overlaps {to_camel(name)} {earlier}; the three ranges must be disjoint")
        return cidr


class _Autoscaled(_Section):
    """A node pool scaling between `minNodes` and `maxNodes`."""

    @field_validator("max_nodes", check_fields=False)
    @classmethod
    def _not_below_min(cls, most: int, info: ValidationInfo) -> int:
        least = info.data.get("min_nodes")
        if least is not None and most < least:
            raise ValueError(f"{most} is below minNodes {least}")
        return most


class CpuPool(_Autoscaled):
    """The system pool (the operator, system pods) or the build pool (image builds under GKE Sandbox)."""

    machine_type: CpuMachineType = "e2-standard-4"
    min_nodes: Int
    max_nodes: CpuPoolSize
    disk_size_gb: CpuDiskSize


class SystemPool(CpuPool):
    """At least one node: the operator and the cluster's system pods always run."""

    min_nodes: Annotated[Int, within(1, 100)] = 1
    max_nodes: CpuPoolSize = 3
    disk_size_gb: CpuDiskSize = 100


class BuildPool(CpuPool):
    """Builds scale from zero; the disk holds pulled base images and BuildKit's state (up to 50 GiB per build)."""

    min_nodes: Annotated[Int, within(0, 100)] = 0
    max_nodes: CpuPoolSize = 2
    disk_size_gb: CpuDiskSize = 200


class GpuPoolSettings(_Autoscaled):
    """A GPU pool as the stack file sets it: how to build it. What the operator needs of it is `facts`."""

    name: GpuPoolName = Field(description="a short pool name such as l4 or a100")
    gpu_type: Annotated[Str, one_of(GPU_TYPES)] = Field(description=f"use one of {', '.join(GPU_TYPES)}")
    spot: Bool = True
    gpus_per_node: Annotated[Int, within(1, 16)] = 1
    machine_type: Str = ""  # defaults from the catalogue
    min_nodes: Annotated[Int, within(0, 1000)] = 0
    max_nodes: Annotated[Int, within(1, 1000)] = 1
    zones: tuple[Str, ...] = ()  # defaults to the stack's zones
    local_ssd_count: Annotated[Int, within(0, 24)] = 0
    disk_size_gb: Annotated[Int, within(50, 65536)] = 200
    disk_type: Annotated[Str, one_of(DISK_TYPES)] = "pd-balanced"
    # Nodes only through GKE's queued provisioning (Dynamic Workload Scheduler): Kueue asks for all of a Job's nodes
    # at once with a ProvisioningRequest and admits the Job when they exist (infra/queueing.py).
    queued_provisioning: Bool = False

    @property
    def facts(self) -> GpuPool:
        """The pool as the operator places work on it: what the stack writes of it (outputs, the operator's
        ConfigMap), and whose taints the node pool and its Kueue flavor carry."""
        return GpuPool(name=self.name, gpu_type=self.gpu_type, gpus_per_node=self.gpus_per_node, spot=self.spot)

    @field_validator("gpus_per_node")
    @classmethod
    def _offered(cls, count: int, info: ValidationInfo) -> int:
        """Some machine type carries `count` of the GPU (on demand too, unless spot). A bad `spot` is named on its
        own key; the count is then checked as if spot."""
        gpu_type = info.data.get("gpu_type")
        if gpu_type is not None:
            _raise_if(machine_problem(gpu_type, count, None, info.data.get("spot", True)))
        return count

    @field_validator("machine_type")
    @classmethod
    def _carries_the_gpus(cls, machine: str, info: ValidationInfo) -> str:
        """Empty: the catalogue's machine for the GPU and count; else one that carries them (the count passed, so
        Spot is settled)."""
        gpu_type, count = info.data.get("gpu_type"), info.data.get("gpus_per_node")
        if gpu_type is None or count is None:
            return machine  # the GPU or the count is wrong, and named on its own key
        if not machine:
            return CATALOGUE[gpu_type].default_machine(count)
        _raise_if(machine_problem(gpu_type, count, machine, spot=True))
        return machine

    @field_validator("queued_provisioning")
    @classmethod
    def _queued_capacity(cls, queued: bool, info: ValidationInfo) -> bool:
        """Queued provisioning obtains on-demand capacity for the GPUs GKE offers it for, from zero nodes: GKE
        refuses it with Spot VMs, and the autoscaler never keeps queued nodes around (minNodes must be 0)."""
        if not queued:
            return queued
        gpu_type = info.data.get("gpu_type")
        if gpu_type is not None and gpu_type not in QUEUED_PROVISIONING_GPUS:
            _raise_if(f"GKE's queued provisioning serves {', '.join(QUEUED_PROVISIONING_GPUS)}, not {gpu_type}; "
                      "set queuedProvisioning: false for this pool")
        if info.data.get("spot"):
            _raise_if("queued provisioning obtains on-demand capacity and cannot be combined with Spot VMs: "
                      "set spot: false, or queuedProvisioning: false and keep a spot pool")
        if info.data.get("min_nodes"):
            _raise_if(f"a queued-provisioning pool scales from zero; set minNodes: 0 (it is {info.data['min_nodes']})")
        return queued

    @field_validator("zones")
    @classmethod
    def _in_the_stack_region(cls, zones: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        scope = _scope(info.context)
        if not zones:
            return scope.zones
        if scope.region:
            _raise_if(zones_problem(zones, scope.region))
        return zones


class BucketSettings(_Section):
    location: Str = ""  # defaults to the stack's region
    storage_class: Annotated[Str, one_of(STORAGE_CLASSES)] = "STANDARD"
    # GCS accepts 0 (off) or 7..90 days of soft delete.
    soft_delete_days: SoftDeleteDays = 7
    uploads_expire_days: Annotated[Int, within(1, 365)] = 3
    noncurrent_expire_days: Annotated[Int, within(1, 3650)] = 30

    @field_validator("location")
    @classmethod
    def _region_by_default(cls, location: str, info: ValidationInfo) -> str:
        """GCS spells locations in capitals."""
        return (location or _scope(info.context).region or "").upper()


class RegistrySettings(_Section):
    keep_recent: Annotated[Int, within(1, 1000)] = 10
    untagged_expire_days: Annotated[Int, within(1, 3650)] = 7


class MaintenanceWindow(_Section):
    start_time: Rfc3339 = "2026-01-03T02:00:00Z"
    end_time: Rfc3339 = "2026-01-03T08:00:00Z"
    recurrence: Rrule = "FREQ=WEEKLY;BYDAY=SA,SU"


class Tenant(_Section):
    """A namespace for ML users, and who may use it: `members` are IAM principals (`user:a@example.com`,
    `group:ml@example.com`) that get the namespace's `edit` role and their notebooks' workspaces in the bucket."""

    name: TenantName = Field(description="the tenant's namespace, e.g. ml")
    members: tuple[Member, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, item: Any) -> Any:
        """A tenant written as its bare name (`ml`) or as `{name: ml, members: [group:ml@example.com]}`."""
        if isinstance(item, str):
            return {"name": item}
        if not isinstance(item, Mapping):
            raise ValueError(f"{item!r} is not a namespace name or a mapping with name and members")
        return item


class BinaryAuthorization(_Section):
    """The project's Binary Authorization policy: images outside the platform's registries and `allow` are refused
    (`enforce`) or only logged (`dryrun`)."""

    mode: Annotated[Str, one_of(BINARY_AUTHORIZATION_MODES)] = "enforce"
    allow: tuple[ImagePattern, ...] = ()


class Images(_Section):
    """Every image by digest (images.py says why). The operator's image, when not set, is built from this checkout
    by `pulumi up` (infra/operator_image.py); it may also be a tag someone pushed to the stack's own platform
    repository, where tags are immutable, which `pulumi up` resolves to its digest (infra/stack.py).

    The runtime image (the capture sidecar and the drift monitor, in tenant namespaces) is built with the operator's
    and set with it: both or neither. The payload records the sidecar writes and the monitor's report are a contract
    between the runtime and the operator, so the two come from one release; a runtime built from this checkout
    beside an operator pinned elsewhere could break it. It is pinned by digest, and may not lie in a tenant's
    repository: the tenants' admission policy lets every tenant namespace run exactly this image (modelplane/
    deploy.py), and a tenant's builds push to its repository."""

    operator: Str = ""  # "": built from this checkout
    runtime: Str = ""  # "": built from this checkout, with the operator
    server: PinnedImage = SERVER_IMAGE
    notebook: PinnedImage = NOTEBOOK_IMAGE
    builder: PinnedImage = BUILDER_IMAGE

    @field_validator("operator")
    @classmethod
    def _from_the_stack_registry(cls, image: str, info: ValidationInfo) -> str:
        registry = _scope(info.context).registry
        if registry is None:
            return image  # the project, region or cluster name is wrong, and named on its own key
        if image and not (image.startswith(f"{registry}/") and _IMAGE_RE.match(image)):
            _raise_if(_pinned_problem(image))
        return image

    @field_validator("runtime")
    @classmethod
    def _with_the_operator(cls, image: str, info: ValidationInfo) -> str:
        if "operator" not in info.data:
            return image  # the operator's image is wrong, and named on its own key
        if bool(image) != bool(info.data["operator"]):
            _raise_if(f"set with images.operator, from the same release, or neither (both are then built from this "
                      f"checkout): images.operator is {info.data['operator'] or 'not set'}, images.runtime "
                      f"{image or 'not set'}")
        if image:
            _raise_if(_pinned_problem(image))
            registry = _scope(info.context).registry
            if registry and image.startswith(f"{registry}-"):
                _raise_if(f"{image!r} lies in a tenant's repository, which that tenant's builds push to, and every "
                          f"tenant namespace admits the runtime image: use the platform repository {registry}/ or "
                          "another registry")
        return image


class PoolQuota(_Section):
    """A GPU pool's nominal quota in its ClusterQueue. 0 (the default) derives it from the pool: maxNodes times the
    node's GPUs, vCPUs, memory and boot disk (infra/queueing.py)."""

    gpus: Annotated[Int, within(0, 100000)] = 0
    cpu: Annotated[Int, within(0, 10000000)] = 0  # vCPUs
    memory_gb: Annotated[Int, within(0, 100000000)] = 0


class Queueing(_Section):
    """Kueue's queues (infra/queueing.py): every ClusterQueue in one cohort, and quota overrides by pool name."""

    cohort: Annotated[Str, dns_label(63)] = "modelplane"
    pools: Mapping[Str, PoolQuota] = Field(default_factory=dict)


def default_cluster_name(stack: str) -> str:
    """`modelplane-<stack>` when that is a valid cluster name; else its first characters and a digest of the stack
    name. Every name of the stack's resources derives from the cluster name, so two stacks must never share it
    (`staging-west` and `staging-west2` do not), and it may not end in '-' (`staging-w-east` does not)."""
    readable = f"{NAMESPACE}-{stack}"
    if not _dns_label_problem(readable, _MAX_CLUSTER_NAME):
        return readable
    digest = hashlib.sha256(stack.encode()).hexdigest()[:6]
    prefix = re.sub(r"[^a-z0-9-]", "-", readable.lower())[:_MAX_CLUSTER_NAME - len(digest) - 1]
    return f"{prefix.rstrip('-')}-{digest}"


# What an absent section or list means, written as in a stack file. It is validated like written values, so the
# defaults inside a section that derive from the stack (the bucket's location, the operator image, a GPU pool's
# zones and machine type) are derived and checked the same way.
_ABSENT: dict[str, Any] = {
    "masterAuthorizedNetworks": [],
    "network": {},
    "systemPool": {},
    "buildPool": {},
    "gpuPools": [{"name": "l4", "gpuType": "nvidia-l4", "machineType": "g2-standard-8", "maxNodes": 2}],
    "buckets": {},
    "registry": {},
    "tenants": ["ml"],
    "binaryAuthorization": {},
    "labels": {},
    "maintenanceWindow": {},
    "images": {},
    "queueing": {},
}


class StackConfig(_Section):
    """The settings of one stack (`stack`: its name). Fields are validated in this order, and the stack-wide ones
    recorded in the _Scope as they pass: keep project, region, zones and clusterName before the sections that use
    them."""

    project: ProjectId = Field(
        description="the GCP project id to deploy into (pulumi config set modelplane:project ID)")
    region: Annotated[Str, _check(region_problem)] = "us-central1"
    zones: tuple[Str, ...] = ()  # defaults to two zones of the region
    cluster_name: Str = ""  # defaults to default_cluster_name(stack)
    release_channel: Annotated[Str, one_of(RELEASE_CHANNELS)] = "REGULAR"
    private_nodes: Bool = True
    master_authorized_networks: tuple[AuthorizedNetwork, ...]
    dns_endpoint: Bool = True
    network: NetworkRanges
    system_pool: SystemPool
    build_pool: BuildPool
    gpu_pools: tuple[GpuPoolSettings, ...]
    buckets: BucketSettings
    registry: RegistrySettings
    tenants: tuple[Tenant, ...]
    rbac_security_group: SecurityGroup = ""
    secrets_encryption: Bool = True
    binary_authorization: BinaryAuthorization
    deletion_protection: Bool = False
    labels: Mapping[LabelKey, LabelValue]
    maintenance: MaintenanceWindow = Field(alias="maintenanceWindow")
    images: Images
    tenant_gpu_quota: Annotated[Int, within(0, 10000)] = 0
    queueing: Queueing

    _stack: str = PrivateAttr("")

    @property
    def stack(self) -> str:
        return self._stack

    @property
    def gpu_types(self) -> tuple[str, ...]:
        """GPU types this cluster offers, as GKE labels its nodes (what the operator may schedule on)."""
        return tuple(dict.fromkeys(pool.gpu_type for pool in self.gpu_pools))

    @property
    def tenant_names(self) -> tuple[str, ...]:
        return tuple(tenant.name for tenant in self.tenants)

    def model_post_init(self, context: Any, /) -> None:
        self._stack = _scope(context).stack

    @model_validator(mode="before")
    @classmethod
    def _absent_sections(cls, raw: Any) -> Any:
        return {**_ABSENT, **raw} if isinstance(raw, Mapping) else raw

    @field_validator("project", "region")
    @classmethod
    def _record(cls, value: str, info: ValidationInfo) -> str:
        setattr(_scope(info.context), info.field_name or "", value)
        return value

    @field_validator("zones")
    @classmethod
    def _zones_of_the_region(cls, zones: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        scope = _scope(info.context)
        if scope.region:  # else the region is wrong, and named on its own key
            zones = zones or default_zones(scope.region)
            _raise_if(zones_problem(zones, scope.region))
        scope.zones = zones
        return zones

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, name: str, info: ValidationInfo) -> str:
        scope = _scope(info.context)
        name = name or default_cluster_name(scope.stack)
        _raise_if(_dns_label_problem(name, _MAX_CLUSTER_NAME))
        scope.cluster_name = name
        return name

    @field_validator("gpu_pools")
    @classmethod
    def _unique_pool_names(cls, pools: tuple[GpuPoolSettings, ...]) -> tuple[GpuPoolSettings, ...]:
        names = [pool.name for pool in pools]
        for name in sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"pool name {name!r} is used twice; node pool names must be unique")
        return pools

    @field_validator("queueing")
    @classmethod
    def _quotas_of_pools(cls, queueing: Queueing, info: ValidationInfo) -> Queueing:
        if "gpu_pools" not in info.data:
            return queueing  # the pools are wrong, and named on their own key
        pools = [pool.name for pool in info.data["gpu_pools"]]
        for name in sorted(set(queueing.pools) - set(pools)):
            raise ValueError(f"pools.{name}: no GPU pool is named {name!r}; quotas are keyed by gpuPools' names "
                             f"({', '.join(pools) or 'none'})")
        return queueing

    @field_validator("tenants")
    @classmethod
    def _some_distinct_tenants(cls, tenants: tuple[Tenant, ...]) -> tuple[Tenant, ...]:
        names = [tenant.name for tenant in tenants]
        if not names:
            raise ValueError("needs at least one namespace for ML users, e.g. [ml]")
        if len(set(names)) != len(names):
            raise ValueError("lists a namespace twice")
        return tenants

    @field_validator("rbac_security_group")
    @classmethod
    def _needed_for_groups(cls, group: str, info: ValidationInfo) -> str:
        tenants: tuple[Tenant, ...] = info.data.get("tenants", ())
        if not group and any(m.startswith("group:") for t in tenants for m in t.members):
            raise ValueError("required when a tenant member is a group: the gke-security-groups@<your domain> group "
                             "that nests the members' groups (Google Groups for RBAC)")
        return group


def parse_stack_config(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate raw config values (keys without the `modelplane:` prefix) into a StackConfig, or raise ConfigError
    naming every problem."""
    return _validated(raw, stack, [])


def parse_pulumi_config(values: Mapping[str, str], stack: str) -> StackConfig:
    """The StackConfig of config as Pulumi hands it to a program: `modelplane:<key>` keys, structured values as JSON
    text. Any other key is a problem, not ignored (a `region:` or `gcp:region:` would otherwise silently leave the
    default region in place), except Pulumi's own `pulumi:` settings."""
    raw: dict[str, Any] = {}
    problems = []
    for key, text in values.items():
        namespace, colon, name = key.partition(":")
        if namespace == NAMESPACE and colon:
            raw[name] = _decoded(text)
        elif namespace != PULUMI_NAMESPACE:
            problems.append(_foreign_key(key))
    return _validated(raw, stack, problems)


def _decoded(text: str) -> Any:
    """A structured value (or null) from its JSON text; anything else, including text that only looks like JSON,
    stays the string it is."""
    if text[:1] in "[{" or text == "null":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return text


def load_stack_config() -> StackConfig:
    """The StackConfig of the running Pulumi stack."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    return parse_pulumi_config({**get_config_env(), **CONFIG.get()}, pulumi.get_stack())


def _validated(raw: Mapping[str, Any], stack: str, problems: list[str]) -> StackConfig:
    try:
        config = StackConfig.model_validate(raw, context=_Scope(stack))
    except ValidationError as error:
        raise ConfigError(problems + [_problem(e) for e in error.errors()]) from None
    if problems:
        raise ConfigError(problems)
    return config


def _foreign_key(key: str) -> str:
    namespace, _, name = key.rpartition(":")
    fix = (f"write {NAMESPACE}:{name}" if name in _fields(StackConfig)
           else f"delete it, or write this program's keys as {NAMESPACE}:<key>")
    why = (f"the GCP provider is configured from {NAMESPACE}:project and {NAMESPACE}:region" if namespace == "gcp"
           else f"this program reads only {NAMESPACE}: keys")
    return f"{key}: not a {NAMESPACE}: key, so nothing would read it ({why}); {fix}"


_EXPECTED = {"int_type": "an integer", "bool_type": "true or false", "string_type": "a string",
             "tuple_type": "a list", "model_type": "a mapping", "dict_type": "a mapping"}


def _problem(error: ErrorDetails) -> str:
    """One validation error as `modelplane:<key path>: <message>`, in the words of the stack file, not pydantic's."""
    path, section = _located(error["loc"])
    kind, name, value = error["type"], str(error["loc"][-1]), error.get("input")
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error"))
    elif kind == "missing":
        field = _fields(section).get(name)
        message = f"required: {field.description}" if field and field.description else "required"
    elif kind == "extra_forbidden":
        message = _unknown_key(name, section)
    elif value is None:
        message = "has no value; set one or delete the key (an empty key in YAML is null)"
    elif kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {value!r}"
    else:
        message = error["msg"]
    return f"{NAMESPACE}:{path}: {message}"


def _located(loc: tuple[str | int, ...]) -> tuple[str, type[BaseModel] | None]:
    """A validation error's location as the stack file's key (`gpuPools[0].name`, `labels.team`), and the section
    its last key is in. Pydantic locates an error in a written value by key, in a default by field name."""
    path, section = "", None
    model: type[BaseModel] | None = StackConfig
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "[key]":  # pydantic's marker for a mapping's key, as opposed to its value
            section, named = model, model.model_fields.get(part) if model else None
            key = named.alias or part if named else part
            path += f".{key}" if path else key
            field = _fields(model).get(key)
            model = _model_in(field.annotation) if field else None
    return path, section


def _unknown_key(name: str, section: type[BaseModel] | None) -> str:
    """Names the key it was probably meant to be, or, for a section's key written at the top level (mis-indented),
    the sections it belongs in."""
    known = list(_fields(section))
    homes = [key for key, field in _fields(StackConfig).items()
             if section is StackConfig and name in _fields(_model_in(field.annotation))]
    close = [k for k in known if k.lower().startswith(name.lower())] or difflib.get_close_matches(
        name, known, n=1, cutoff=0.5)
    if homes:
        hint = f"{name} is a key of {', '.join(homes)}: indent it under one of them "
    else:
        hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key; {hint}(known keys: {', '.join(known)})"


def _fields(model: type[BaseModel] | None) -> dict[str, FieldInfo]:
    """A section's fields by the key they are written as."""
    if model is None:
        return {}
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds (itself, or the items of a list of them)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((model for arg in get_args(annotation) if (model := _model_in(arg))), None)
