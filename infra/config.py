"""StackConfig: the typed, validated settings of one environment (stacks/Pulumi.<stack>.yaml).

Every key but `project` has a default that suits a dev stack. `parse_stack_config` reports every problem at
once, each naming the key, the value and what would be valid, so a reviewer fixes a config in one round trip and
nothing is planned from a config that is wrong.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from infra.gke.catalogue import CATALOGUE, machine_problem
from modelplane.api.common import GPU_TYPES
from modelplane.images import (
    BUILDER_IMAGE,
    DIGEST_PINNED,
    NOTEBOOK_IMAGE,
    OPERATOR_IMAGE_NAME,
    OPERATOR_VERSION,
    SERVER_IMAGE,
)
from modelplane.names import BUCKET_ROOTS, BUILD_NAMESPACE, BUILD_POOL, SYSTEM_NAMESPACE

NAMESPACE = "modelplane"  # the Pulumi project name: config keys are `modelplane:<key>`

RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
DISK_TYPES = ("pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced")
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", SYSTEM_NAMESPACE, BUILD_NAMESPACE,
                       "gmp-system", "gmp-public", "gke-managed-system")
RESERVED_POOL_NAMES = ("system", BUILD_POOL)  # the CPU pools' names: a GPU pool cannot take them

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_DNS_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
_IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9](:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# The longest suffix appended to the cluster name for a service account id ("-operator"); GCP caps ids at 30.
_MAX_CLUSTER_NAME = 30 - len("-operator")


class ConfigError(Exception):
    """All problems of a stack config, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid stack config:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class AuthorizedNetwork:
    name: str
    cidr: str


@dataclass(frozen=True)
class NetworkRanges:
    subnet_cidr: str
    pods_cidr: str
    services_cidr: str


@dataclass(frozen=True)
class CpuPool:
    """The system pool (the operator, system pods) or the build pool (image builds under GKE Sandbox)."""

    machine_type: str
    min_nodes: int
    max_nodes: int
    disk_size_gb: int


@dataclass(frozen=True)
class GpuPool:
    name: str
    gpu_type: str
    gpus_per_node: int
    machine_type: str
    min_nodes: int
    max_nodes: int
    spot: bool
    zones: tuple[str, ...]
    local_ssd_count: int
    disk_size_gb: int
    disk_type: str


@dataclass(frozen=True)
class BucketSettings:
    location: str
    storage_class: str
    soft_delete_days: int
    uploads_expire_days: int
    noncurrent_expire_days: int


@dataclass(frozen=True)
class RegistrySettings:
    keep_recent: int
    untagged_expire_days: int


@dataclass(frozen=True)
class MaintenanceWindow:
    start_time: str
    end_time: str
    recurrence: str


@dataclass(frozen=True)
class Tenant:
    """A namespace for ML users, and who may use it: `members` are IAM principals (`user:a@example.com`,
    `group:ml@example.com`) that get the namespace's `edit` role and their notebooks' workspaces in the bucket."""

    name: str
    members: tuple[str, ...] = ()


BINARY_AUTHORIZATION_MODES = ("enforce", "dryrun", "off")


@dataclass(frozen=True)
class BinaryAuthorization:
    """The project's Binary Authorization policy: images outside the platform's registries and `allow` are refused
    (`enforce`) or only logged (`dryrun`)."""

    mode: str
    allow: tuple[str, ...]


@dataclass(frozen=True)
class Images:
    operator: str
    server: str
    notebook: str
    builder: str


@dataclass(frozen=True)
class StackConfig:
    stack: str
    project: str
    region: str
    zones: tuple[str, ...]
    cluster_name: str
    release_channel: str
    private_nodes: bool
    master_authorized_networks: tuple[AuthorizedNetwork, ...]
    dns_endpoint: bool
    network: NetworkRanges
    system_pool: CpuPool
    build_pool: CpuPool
    gpu_pools: tuple[GpuPool, ...]
    buckets: BucketSettings
    registry: RegistrySettings
    tenants: tuple[Tenant, ...]
    rbac_security_group: str
    secrets_encryption: bool
    binary_authorization: BinaryAuthorization
    deletion_protection: bool
    labels: Mapping[str, str]
    maintenance: MaintenanceWindow
    images: Images
    tenant_gpu_quota: int

    @property
    def gpu_types(self) -> tuple[str, ...]:
        """GPU types this cluster offers, as GKE labels its nodes (what the operator may schedule on)."""
        return tuple(dict.fromkeys(pool.gpu_type for pool in self.gpu_pools))

    @property
    def tenant_names(self) -> tuple[str, ...]:
        return tuple(tenant.name for tenant in self.tenants)


T = TypeVar("T")
_MISSING = object()


class _Reader:
    """Walks raw config values, collecting every problem with the dotted key it belongs to."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._path: list[str] = []

    def key(self, name: str) -> str:
        return f"{NAMESPACE}:" + "".join(self._path) + name

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{self.key(name)}: {message}")

    @contextmanager
    def within(self, segment: str) -> Iterator[None]:
        self._path.append(segment)
        try:
            yield
        finally:
            self._path.pop()

    def unknown_keys(self, raw: Mapping[str, Any], known: tuple[str, ...]) -> None:
        for name in raw:
            if name not in known:
                close = [k for k in known if k.lower().startswith(name.lower())] or difflib.get_close_matches(
                    name, known, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.problem(name, f"unknown key; {hint}(known keys: {', '.join(known)})")

    def value(self, raw: Mapping[str, Any], name: str, kind: type[T], default: T,
              check: Callable[[T], str | None] | None = None) -> T:
        """The value at `name` as `kind` (or the default), after `check` names no problem."""
        value = raw.get(name, _MISSING)
        if value is _MISSING or value is None:
            return default
        if kind is int and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if kind is bool and isinstance(value, str) and value in ("true", "false"):
            value = value == "true"
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(name, f"expected {kind.__name__}, got {value!r}")
            return default
        problem = check(value) if check else None
        if problem:
            self.problem(name, problem)
            return default
        return value

    def mapping(self, raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = raw.get(name) or {}
        if not isinstance(value, Mapping):
            self.problem(name, f"expected a mapping, got {value!r}")
            return {}
        return value

    def items(self, raw: Mapping[str, Any], name: str, default: list[Any]) -> list[Any]:
        value = raw.get(name, _MISSING)
        if value is _MISSING or value is None:
            return default
        if not isinstance(value, list):
            self.problem(name, f"expected a list, got {value!r}")
            return default
        return value


def _one_of(allowed: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda v: None if v in allowed else f"{v!r} is not allowed; use one of {', '.join(allowed)}"


def _within(low: int, high: int) -> Callable[[int], str | None]:
    return lambda v: None if low <= v <= high else f"{v} is out of range; use {low}..{high}"


def _cidr(value: str) -> str | None:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        return f"{value!r} is not a CIDR block such as 10.0.0.0/20"
    return None


def _dns_label(max_len: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if len(value) > max_len or not _DNS_LABEL_RE.match(value):
            return (f"{value!r} must be lower-case letters, digits and '-', start with a letter, "
                    f"at most {max_len} characters")
        return None
    return check


STACK_KEYS = ("project", "region", "zones", "clusterName", "releaseChannel", "privateNodes",
              "masterAuthorizedNetworks", "dnsEndpoint", "network", "systemPool", "buildPool", "gpuPools", "buckets",
              "registry", "tenants", "rbacSecurityGroup", "secretsEncryption", "binaryAuthorization",
              "deletionProtection", "labels", "maintenanceWindow", "images", "tenantGpuQuota")


def parse_stack_config(raw: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate raw config values (keys without the `modelplane:` prefix) into a StackConfig."""
    r = _Reader()
    r.unknown_keys(raw, STACK_KEYS)

    project = r.value(raw, "project", str, "")
    if not project:
        r.problem("project", "required: the GCP project id to deploy into (pulumi config set modelplane:project ID)")
    elif not _PROJECT_RE.match(project):
        r.problem("project", f"{project!r} is not a GCP project id (6-30 lower-case letters, digits, '-')")

    region = r.value(raw, "region", str, "us-central1",
                     lambda v: None if _REGION_RE.match(v) else f"{v!r} is not a GCP region such as us-central1")
    zones = _zones(r, raw, "zones", region, default=(f"{region}-a", f"{region}-c"))
    cluster_name = r.value(raw, "clusterName", str, f"modelplane-{stack}"[:_MAX_CLUSTER_NAME],
                           _dns_label(_MAX_CLUSTER_NAME))
    tenants = _tenants(r, raw)
    rbac_group = r.value(raw, "rbacSecurityGroup", str, "", _security_group)
    if not rbac_group and any(m.startswith("group:") for t in tenants for m in t.members):
        r.problem("rbacSecurityGroup", "required when a tenant member is a group: the gke-security-groups@<your "
                                       "domain> group that nests the members' groups (Google Groups for RBAC)")

    return _finish(r, StackConfig(
        stack=stack,
        project=project,
        region=region,
        zones=zones,
        cluster_name=cluster_name,
        release_channel=r.value(raw, "releaseChannel", str, "REGULAR", _one_of(RELEASE_CHANNELS)),
        private_nodes=r.value(raw, "privateNodes", bool, True),
        master_authorized_networks=_authorized_networks(r, raw),
        dns_endpoint=r.value(raw, "dnsEndpoint", bool, True),
        network=_network(r, raw),
        system_pool=_cpu_pool(r, raw, "systemPool", SYSTEM_POOL_DEFAULTS, least_nodes=1),
        build_pool=_cpu_pool(r, raw, "buildPool", BUILD_POOL_DEFAULTS, least_nodes=0),
        gpu_pools=_gpu_pools(r, raw, region, zones),
        buckets=_buckets(r, raw, region),
        registry=_registry(r, raw),
        tenants=tenants,
        rbac_security_group=rbac_group,
        secrets_encryption=r.value(raw, "secretsEncryption", bool, True),
        binary_authorization=_binary_authorization(r, raw),
        deletion_protection=r.value(raw, "deletionProtection", bool, False),
        labels=_labels(r, raw),
        maintenance=_maintenance(r, raw),
        images=_images(r, raw, f"{region}-docker.pkg.dev/{project}/{cluster_name}"),
        tenant_gpu_quota=r.value(raw, "tenantGpuQuota", int, 0, _within(0, 10000)),
    ))


def _finish(r: _Reader, config: StackConfig) -> StackConfig:
    if r.problems:
        raise ConfigError(r.problems)
    return config


def _zones(r: _Reader, raw: Mapping[str, Any], name: str, region: str, default: tuple[str, ...]) -> tuple[str, ...]:
    zones = r.items(raw, name, list(default))
    if not zones:
        r.problem(name, f"needs at least one zone of {region}, e.g. {region}-a")
    for zone in zones:
        if not isinstance(zone, str) or not re.match(rf"^{re.escape(region)}-[a-z]$", zone):
            r.problem(name, f"{zone!r} is not a zone of region {region} (e.g. {region}-a)")
    if len(set(zones)) != len(zones):
        r.problem(name, "lists a zone twice")
    return tuple(zones)


def _authorized_networks(r: _Reader, raw: Mapping[str, Any]) -> tuple[AuthorizedNetwork, ...]:
    networks = []
    for i, item in enumerate(r.items(raw, "masterAuthorizedNetworks", [])):
        with r.within(f"masterAuthorizedNetworks[{i}]."):
            if not isinstance(item, Mapping):
                r.problem("", "expected {name, cidr}")
                continue
            r.unknown_keys(item, ("name", "cidr"))
            networks.append(AuthorizedNetwork(name=r.value(item, "name", str, f"network-{i}"),
                                              cidr=r.value(item, "cidr", str, "", _cidr)))
            if not item.get("cidr"):
                r.problem("cidr", "required, e.g. 203.0.113.0/24 (your office or CI egress range)")
    return tuple(networks)


def _network(r: _Reader, raw: Mapping[str, Any]) -> NetworkRanges:
    item = r.mapping(raw, "network")
    with r.within("network."):
        r.unknown_keys(item, ("subnetCidr", "podsCidr", "servicesCidr"))
        ranges = NetworkRanges(subnet_cidr=r.value(item, "subnetCidr", str, "10.10.0.0/20", _cidr),
                               pods_cidr=r.value(item, "podsCidr", str, "10.16.0.0/14", _cidr),
                               services_cidr=r.value(item, "servicesCidr", str, "10.20.0.0/20", _cidr))
        named = [("subnetCidr", ranges.subnet_cidr), ("podsCidr", ranges.pods_cidr),
                 ("servicesCidr", ranges.services_cidr)]
        for i, (a_name, a) in enumerate(named):
            for b_name, b in named[i + 1:]:
                if ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b)):
                    r.problem(b_name, f"{b} overlaps {a_name} {a}; the three ranges must be disjoint")
    return ranges


SYSTEM_POOL_DEFAULTS = CpuPool(machine_type="e2-standard-4", min_nodes=1, max_nodes=3, disk_size_gb=100)
# Builds scale from zero; the disk holds pulled base images and BuildKit's state (up to 50 GiB per build).
BUILD_POOL_DEFAULTS = CpuPool(machine_type="e2-standard-4", min_nodes=0, max_nodes=2, disk_size_gb=200)


def _cpu_pool(r: _Reader, raw: Mapping[str, Any], key: str, defaults: CpuPool, least_nodes: int) -> CpuPool:
    item = r.mapping(raw, key)
    with r.within(f"{key}."):
        r.unknown_keys(item, ("machineType", "minNodes", "maxNodes", "diskSizeGb"))
        pool = CpuPool(machine_type=r.value(item, "machineType", str, defaults.machine_type),
                       min_nodes=r.value(item, "minNodes", int, defaults.min_nodes, _within(least_nodes, 100)),
                       max_nodes=r.value(item, "maxNodes", int, defaults.max_nodes, _within(1, 100)),
                       disk_size_gb=r.value(item, "diskSizeGb", int, defaults.disk_size_gb, _within(30, 65536)))
        if pool.min_nodes > pool.max_nodes:
            r.problem("maxNodes", f"{pool.max_nodes} is below minNodes {pool.min_nodes}")
    return pool


GPU_POOL_KEYS = ("name", "gpuType", "gpusPerNode", "machineType", "minNodes", "maxNodes", "spot", "zones",
                 "localSsdCount", "diskSizeGb", "diskType")


def _gpu_pools(r: _Reader, raw: Mapping[str, Any], region: str, zones: tuple[str, ...]) -> tuple[GpuPool, ...]:
    default = [{"name": "l4", "gpuType": "nvidia-l4", "machineType": "g2-standard-8", "maxNodes": 2}]
    pools = []
    for i, item in enumerate(r.items(raw, "gpuPools", default)):
        with r.within(f"gpuPools[{i}]."):
            if not isinstance(item, Mapping):
                r.problem("", "expected a mapping with name and gpuType")
                continue
            pool = _gpu_pool(r, item, i, region, zones)
            if pool:
                pools.append(pool)
    names = [pool.name for pool in pools]
    for name in sorted({n for n in names if names.count(n) > 1}):
        r.problem("gpuPools", f"pool name {name!r} is used twice; node pool names must be unique")
    return tuple(pools)


def _gpu_pool(r: _Reader, item: Mapping[str, Any], index: int, region: str,
              zones: tuple[str, ...]) -> GpuPool | None:
    r.unknown_keys(item, GPU_POOL_KEYS)
    name = r.value(item, "name", str, "", _dns_label(24))
    if name in RESERVED_POOL_NAMES:
        r.problem("name", f"{name!r} is the name of a CPU pool; pick another (not {', '.join(RESERVED_POOL_NAMES)})")
    if "name" not in item:
        r.problem("name", "required: a short pool name such as l4 or a100")
    gpu_type = r.value(item, "gpuType", str, "", _one_of(GPU_TYPES))
    if "gpuType" not in item:
        r.problem("gpuType", f"required; use one of {', '.join(GPU_TYPES)}")
    count = r.value(item, "gpusPerNode", int, 1, _within(1, 16))
    spot = r.value(item, "spot", bool, True)
    machine_type = r.value(item, "machineType", str, "")
    min_nodes = r.value(item, "minNodes", int, 0, _within(0, 1000))
    max_nodes = r.value(item, "maxNodes", int, 1, _within(1, 1000))
    if min_nodes > max_nodes:
        r.problem("maxNodes", f"{max_nodes} is below minNodes {min_nodes}")
    pool_zones = _zones(r, item, "zones", region, default=zones)
    local_ssds = r.value(item, "localSsdCount", int, 0, _within(0, 24))
    disk_size = r.value(item, "diskSizeGb", int, 200, _within(50, 65536))
    disk_type = r.value(item, "diskType", str, "pd-balanced", _one_of(DISK_TYPES))
    if gpu_type not in CATALOGUE:
        return None
    problem = machine_problem(gpu_type, count, machine_type or None, spot)
    if problem:
        r.problem("machineType" if machine_type and count in CATALOGUE[gpu_type].machines else "gpusPerNode", problem)
        return None
    return GpuPool(name=name or f"gpu-{index}", gpu_type=gpu_type, gpus_per_node=count,
                   machine_type=machine_type or CATALOGUE[gpu_type].default_machine(count), min_nodes=min_nodes,
                   max_nodes=max_nodes, spot=spot, zones=pool_zones, local_ssd_count=local_ssds,
                   disk_size_gb=disk_size, disk_type=disk_type)


def _buckets(r: _Reader, raw: Mapping[str, Any], region: str) -> BucketSettings:
    item = r.mapping(raw, "buckets")
    with r.within("buckets."):
        r.unknown_keys(item, ("location", "storageClass", "softDeleteDays", "uploadsExpireDays",
                              "noncurrentExpireDays"))
        return BucketSettings(
            location=r.value(item, "location", str, region.upper()).upper(),
            storage_class=r.value(item, "storageClass", str, "STANDARD", _one_of(STORAGE_CLASSES)),
            # GCS accepts 0 (off) or 7..90 days of soft delete.
            soft_delete_days=r.value(item, "softDeleteDays", int, 7,
                                     lambda v: None if v == 0 or 7 <= v <= 90 else f"{v}: use 0 (off) or 7..90"),
            uploads_expire_days=r.value(item, "uploadsExpireDays", int, 3, _within(1, 365)),
            noncurrent_expire_days=r.value(item, "noncurrentExpireDays", int, 30, _within(1, 3650)),
        )


def _registry(r: _Reader, raw: Mapping[str, Any]) -> RegistrySettings:
    item = r.mapping(raw, "registry")
    with r.within("registry."):
        r.unknown_keys(item, ("keepRecent", "untaggedExpireDays"))
        return RegistrySettings(keep_recent=r.value(item, "keepRecent", int, 10, _within(1, 1000)),
                                untagged_expire_days=r.value(item, "untaggedExpireDays", int, 7, _within(1, 3650)))


_MEMBER_RE = re.compile(r"^(user|group):[^@\s]+@[^@\s]+\.[a-z]{2,}$")
# The longest tenant name: the tenant's image repository is `<clusterName>-<tenant>`, at most 63 characters.
MAX_TENANT_NAME = 63 - _MAX_CLUSTER_NAME - 1


def _tenants(r: _Reader, raw: Mapping[str, Any]) -> tuple[Tenant, ...]:
    tenants = []
    for i, item in enumerate(r.items(raw, "tenants", ["ml"])):
        with r.within(f"tenants[{i}]."):
            tenant = _tenant(r, item)
        if tenant:
            tenants.append(tenant)
    names = [t.name for t in tenants]
    if len(set(names)) != len(names):
        r.problem("tenants", "lists a namespace twice")
    if not tenants:
        r.problem("tenants", "needs at least one namespace for ML users, e.g. [ml]")
    return tuple(tenants)


def _tenant(r: _Reader, item: object) -> Tenant | None:
    """A tenant written as a bare name (`ml`) or as `{name: ml, members: [group:ml@example.com]}`."""
    raw: Mapping[str, Any] = {"name": item} if isinstance(item, str) else item if isinstance(item, Mapping) else {}
    if not raw:
        r.problem("", f"{item!r} is not a namespace name or a mapping with name and members")
        return None
    r.unknown_keys(raw, ("name", "members"))
    name = r.value(raw, "name", str, "", _dns_label(MAX_TENANT_NAME))
    if "name" not in raw:
        r.problem("name", "required: the tenant's namespace, e.g. ml")
    reserved = tenant_name_problem(name)
    if reserved:
        r.problem("name", reserved)
    members = []
    for member in r.items(raw, "members", []):
        if isinstance(member, str) and _MEMBER_RE.match(member):
            members.append(member)
        else:
            r.problem("members", f"{member!r} is not an IAM principal such as user:ada@example.com or "
                                 "group:ml-team@example.com")
    return Tenant(name=name, members=tuple(members)) if name and not reserved else None


def tenant_name_problem(name: str) -> str | None:
    """Why `name` cannot be a tenant: a system namespace, or a top-level prefix of the bucket layout (a tenant
    named `uploads` would be granted every tenant's build uploads)."""
    if name in RESERVED_NAMESPACES:
        return f"{name!r} is a system namespace; give ML users a namespace of their own"
    if name in BUCKET_ROOTS:
        return f"{name!r} is a top-level folder of the artifacts bucket ({', '.join(BUCKET_ROOTS)}); pick another name"
    return None


def _security_group(value: str) -> str | None:
    if re.match(r"^gke-security-groups@[a-z0-9.-]+\.[a-z]{2,}$", value):
        return None
    return f"{value!r} must be the group named gke-security-groups@<your domain> (GKE requires that name)"


def _binary_authorization(r: _Reader, raw: Mapping[str, Any]) -> BinaryAuthorization:
    item = r.mapping(raw, "binaryAuthorization")
    with r.within("binaryAuthorization."):
        r.unknown_keys(item, ("mode", "allow"))
        allow = []
        for pattern in r.items(item, "allow", []):
            if isinstance(pattern, str) and re.match(r"^[a-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._/*@:-]+$", pattern):
                allow.append(pattern)
            else:
                r.problem("allow", f"{pattern!r} is not an image name pattern such as "
                                   "us-docker.pkg.dev/my-project/images/* or docker.io/library/python@*")
        return BinaryAuthorization(mode=r.value(item, "mode", str, "enforce", _one_of(BINARY_AUTHORIZATION_MODES)),
                                   allow=tuple(allow))


def _labels(r: _Reader, raw: Mapping[str, Any]) -> dict[str, str]:
    labels = dict(r.mapping(raw, "labels"))
    for key, value in labels.items():
        if not _LABEL_KEY_RE.match(str(key)):
            r.problem(f"labels.{key}", "a GCP label key is lower-case letters, digits, '_' or '-', starting with a "
                                       "letter, at most 63 characters")
        if not isinstance(value, str) or not _LABEL_VALUE_RE.match(value):
            r.problem(f"labels.{key}", f"{value!r}: a GCP label value is lower-case letters, digits, '_' or '-', "
                                       "at most 63 characters")
    return {str(k): str(v) for k, v in labels.items()}


def _maintenance(r: _Reader, raw: Mapping[str, Any]) -> MaintenanceWindow:
    item = r.mapping(raw, "maintenanceWindow")

    def rfc3339(v: str) -> str | None:
        return None if _TIME_RE.match(v) else f"{v!r} is not an RFC 3339 UTC time such as 2026-01-03T02:00:00Z"

    with r.within("maintenanceWindow."):
        r.unknown_keys(item, ("startTime", "endTime", "recurrence"))
        return MaintenanceWindow(
            start_time=r.value(item, "startTime", str, "2026-01-03T02:00:00Z", rfc3339),
            end_time=r.value(item, "endTime", str, "2026-01-03T08:00:00Z", rfc3339),
            recurrence=r.value(item, "recurrence", str, "FREQ=WEEKLY;BYDAY=SA,SU",
                               lambda v: None if v.startswith("FREQ=") else f"{v!r} is not an RFC 5545 RRULE "
                                                                           "such as FREQ=WEEKLY;BYDAY=SA,SU"),
        )


def _images(r: _Reader, raw: Mapping[str, Any], registry: str) -> Images:
    """Every image by digest (images.py says why). The operator's image may also be a tag in the stack's own
    platform repository, where tags are immutable: `pulumi up` resolves it to its digest (infra/platform.py)."""
    item = r.mapping(raw, "images")

    def pinned(value: str) -> str | None:
        if not _IMAGE_RE.match(value):
            return f"{value!r} is not an image reference such as repo/name:tag@sha256:<digest>"
        if not re.search(DIGEST_PINNED, value):
            return (f"{value!r} is not pinned by digest; append @sha256:<digest> (crane digest {value} prints it): "
                    "a tag can be moved to other code")
        return None

    def operator(value: str) -> str | None:
        return None if value.startswith(f"{registry}/") and _IMAGE_RE.match(value) else pinned(value)

    with r.within("images."):
        r.unknown_keys(item, ("operator", "server", "notebook", "builder"))
        return Images(
            # The operator image is built from platform/operator/Dockerfile and pushed to the stack's registry.
            operator=r.value(item, "operator", str, f"{registry}/{OPERATOR_IMAGE_NAME}:{OPERATOR_VERSION}", operator),
            server=r.value(item, "server", str, SERVER_IMAGE, pinned),
            notebook=r.value(item, "notebook", str, NOTEBOOK_IMAGE, pinned),
            builder=r.value(item, "builder", str, BUILDER_IMAGE, pinned),
        )


def decode_pulumi_config(values: Mapping[str, str]) -> dict[str, Any]:
    """Strip `modelplane:` and decode structured values, which Pulumi hands to programs as JSON text."""
    decoded: dict[str, Any] = {}
    for key, text in values.items():
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            decoded[name] = json.loads(text) if text[:1] in "[{" else text
        except json.JSONDecodeError:
            decoded[name] = text
    return decoded


def load_stack_config() -> StackConfig:
    """The StackConfig of the running Pulumi stack."""
    import pulumi
    from pulumi.runtime.config import CONFIG, get_config_env

    return parse_stack_config(decode_pulumi_config({**get_config_env(), **CONFIG.get()}), pulumi.get_stack())
