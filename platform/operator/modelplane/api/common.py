"""Spec and status pieces every kind shares, each defined once.

Validation that can be static lives here, as schema constraints or CEL rules (`x-kubernetes-validations`) with a
message a user understands, so `kubectl apply` rejects bad input before the operator ever sees it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from modelplane.api.reasons import Phase

GROUP = "modelplane.dev"
VERSION = "v1alpha1"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # RFC 3339 in UTC to the second, as the API server writes times

# GKE accelerator names; also the node label `cloud.google.com/gke-accelerator`.
GpuType = Literal["nvidia-l4", "nvidia-tesla-a100", "nvidia-a100-80gb", "nvidia-h100-80gb", "nvidia-tesla-t4"]
GPU_TYPES: tuple[str, ...] = get_args(GpuType)

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY = rf"^(\+|-)?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_NUMBER}))?$"  # Kubernetes' quantity syntax
# ${{ secrets.NAME.KEY }}: group 1 is the Secret's name, group 3 the key.
SECRET_REF = r"^\$\{\{ *secrets\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([-._a-zA-Z0-9]+) *\}\}$"


def rule(expression: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One CEL validation rule as the API server takes it."""
    validation = {"rule": expression, "message": message}
    if field_path:
        validation["fieldPath"] = field_path
    return validation


def _cel_string(text: str) -> str:
    """`text` escaped for a single-quoted CEL string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields ignored (the API server prunes them anyway)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


def _quantity_schema() -> dict[str, Any]:
    """A Kubernetes quantity as users write it: a string (`500m`, `16Gi`) or a YAML number (`4`, `0.5`).

    `x-kubernetes-int-or-string` would refuse `0.5`, and a structural schema cannot put `type` inside `anyOf`. So the
    node is untyped (`x-kubernetes-preserve-unknown-fields` makes that structural) and only value validations, which
    a structural schema allows in junctors, pick the type: `maximum`, `pattern` and `maxLength` constrain only values
    of their own type, so `not: {maximum: 0}` holds exactly for numbers above zero and `not: {maxLength: 0}` exactly
    for non-empty strings. CEL cannot see untyped nodes, so no rule may read these fields.
    """
    return {
        "x-kubernetes-preserve-unknown-fields": True,
        "anyOf": [{"not": {"maximum": 0}},
                  {"pattern": QUANTITY, "maxLength": 64, "not": {"maxLength": 0}}],
    }


Quantity = Annotated[str | int | float, WithJsonSchema(_quantity_schema())]


def quantity(value: str | int | float) -> str:
    """`value` as a Kubernetes quantity string: numbers in plain decimal (`0.5`, never `5e-01`), strings as written."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return format(Decimal(repr(value)).normalize(), "f")


_SCALES: dict[str, Decimal] = {
    **{suffix: Decimal(1024) ** power for power, suffix in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{suffix: Decimal(10) ** power for suffix, power in (("n", -9), ("u", -6), ("m", -3), ("k", 3), ("M", 6),
                                                          ("G", 9), ("T", 12), ("P", 15), ("E", 18))},
}
_NUMBER_AND_SUFFIX = re.compile(rf"^(?P<number>[+-]?{_NUMBER})(?P<suffix>.*)$")


def quantity_value(value: str | int | float) -> Decimal:
    """What a quantity amounts to, as the API server reads it: `16Gi` -> 17179869184, `500m` -> 0.5, `1e3` -> 1000.

    ValueError for what QUANTITY refuses (the CRD's schema does so before the operator sees it)."""
    text = quantity(value)
    match = _NUMBER_AND_SUFFIX.match(text)
    if match is None or not re.match(QUANTITY, text):
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number, suffix = Decimal(match["number"]), match["suffix"]
    if suffix in _SCALES:
        return number * _SCALES[suffix]
    return number * Decimal(10) ** Decimal(suffix[1:])  # an exponent, e.g. e3


Name = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]


class ObjectRef(ApiModel):
    """Another object of the platform in the same namespace."""

    name: Name = Field(description="Name of the object (a DNS-1123 label, e.g. llama-3-8b).")


class GitSource(ApiModel):
    """Build the image from a Dockerfile in a git repository."""

    url: str = Field(
        max_length=2048, description="Repository URL: https://host/org/repo(.git), ssh://... or git@host:org/repo.",
        json_schema_extra=validations(rule(
            r"self.matches('^(https://|ssh://|git@)[^\\s]+$')",
            "build.git.url must be an https:// or ssh:// URL, or git@host:org/repo")))
    ref: str = Field(
        default="main", max_length=255, description="Branch, tag or commit to build.",
        json_schema_extra=validations(rule(
            r"self.matches('^[A-Za-z0-9][A-Za-z0-9._/-]*$') && !self.contains('..') && !self.endsWith('/')",
            "build.git.ref must be a branch, tag or commit: letters, digits, '.', '_', '-', '/', "
            "not starting with '-' and without '..'")))
    path: str = Field(
        default=".", max_length=1024, description="Directory of the Dockerfile within the repository.",
        json_schema_extra=validations(rule(
            "!self.startsWith('/') && !self.contains('..')",
            "build.git.path must be a relative directory inside the repository (no leading '/' or '..')")))


REQUEST_ID_RULE = "self.matches('^[A-Za-z0-9][-A-Za-z0-9]*$')"
RequestID = Annotated[str, Field(max_length=63)]


class UploadSource(ApiModel):
    """Build the image from a tarball uploaded through a signed URL (what `kubectl applybuild` does)."""

    md5: str = Field(max_length=32, description="MD5 of the tarball as 32 lower-case hex digits.",
                     json_schema_extra=validations(rule(
                         "self.matches('^[a-f0-9]{32}$')", "build.upload.md5 must be 32 lower-case hex digits")))
    request_id: str = Field(
        alias="requestID", max_length=63, description="A new value asks the operator for a new signed upload URL.",
        json_schema_extra=validations(rule(
            "self.matches('^[A-Za-z0-9][-A-Za-z0-9]*$')",
            "build.upload.requestID must be letters, digits and '-', at most 63 characters")))


class Build(ApiModel):
    """Where the image is built from: exactly one of git or upload."""

    model_config = ConfigDict(json_schema_extra=validations(rule(
        "has(self.git) != has(self.upload)", "build needs exactly one of git or upload")))

    git: GitSource | None = None
    upload: UploadSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Build:
        if (self.git is None) == (self.upload is None):
            raise ValueError("build needs exactly one of git or upload")
        return self


class Gpu(ApiModel):
    """GPUs for each pod; the type must be offered by a node pool of this cluster."""

    type: GpuType = Field(description="GKE accelerator name, e.g. nvidia-l4 or nvidia-tesla-a100.")
    count: int = Field(default=1, ge=1, le=16, description="GPUs per pod, 1 to 16.")


class Resources(ApiModel):
    """What each pod requests (Kubernetes quantities)."""

    cpu: Quantity = Field(default="2", description="CPU cores, e.g. 4, 0.5 or 500m.")
    memory: Quantity = Field(default="8Gi", description="Memory, e.g. 16Gi.")
    disk: Quantity = Field(default="20Gi", description="Ephemeral disk for scratch space, e.g. 100Gi.")
    gpu: Gpu | None = Field(default=None, description="GPUs; omit for CPU-only work.")


MAX_ENV_NAME = 128
MAX_SECRET_REF = 600


def _env_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "default": {},
        "maxProperties": 128,
        "additionalProperties": {"type": "string", "maxLength": 4096},
        "description": "Environment variables; a value `${{ secrets.NAME.KEY }}` reads key KEY of Secret NAME.",
        **validations(
            # The size test first: it short-circuits, so no regex runs over a long key (keys have no maxLength).
            rule(f"self.all(k, k.size() <= {MAX_ENV_NAME} && k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",
                 f"env names must be letters, digits and '_', not starting with a digit, at most {MAX_ENV_NAME} "
                 "characters"),
            rule("self.all(k, !k.startsWith('PARAM_'))",
                 "env names starting with PARAM_ are reserved for params"),
            # Secret and key names are at most 253 characters: the size test keeps the regex off long values.
            rule(f"self.all(k, !self[k].startsWith('${{{{') || self[k].size() <= {MAX_SECRET_REF} && "
                 f"self[k].matches('{_cel_string(SECRET_REF)}'))",
                 "an env value starting with ${{ must be ${{ secrets.NAME.KEY }}"),
        ),
    }


Env = Annotated[dict[str, str], WithJsonSchema(_env_schema())]
MAX_PARAMS = 128  # each key is also a PARAM_* env var, beside at most 128 of spec.env
Params = Annotated[dict[str, Any], WithJsonSchema({
    "type": "object", "default": {}, "x-kubernetes-preserve-unknown-fields": True, "maxProperties": MAX_PARAMS,
    "description": "Free-form parameters: /content/params.json in the container, and PARAM_<UPPER_SNAKE_KEY> env vars.",
})]

OnDelete = Literal["Retain", "Delete"]
ON_DELETE_DESCRIPTION = ("What happens to the data in the bucket when this object is deleted: "
                         "Retain (default) keeps it, Delete removes it.")


class Schedule(ApiModel):
    """Run on a schedule (a Dataset's loads, a server's monitor runs): at most one run at a time, and after downtime
    one run, not one per missed time."""

    cron: str = Field(max_length=128, description="Five cron fields, e.g. `0 3 * * *` (03:00 every day).",
                      json_schema_extra=validations(rule(
                          r"self.matches('^ *[^ ]+( +[^ ]+){4} *$')",
                          "schedule.cron must have five fields: minute hour day-of-month month day-of-week")))
    time_zone: str = Field(default="UTC", max_length=64, description="IANA time zone of the cron times.")


class Workload(ApiModel):
    """What runs: an image (prebuilt or built), its command, parameters, environment and resources."""

    image: str | None = Field(default=None, max_length=1024, description="A prebuilt container image.")
    build: Build | None = Field(default=None, description="Build the image instead, from git or an upload.")
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, max_length=64, description="Entrypoint override.")
    params: Params = Field(default_factory=dict)
    env: Env = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources, json_schema_extra={"default": {}})


def exactly_one_image(spec: Workload) -> Workload:
    """The CEL rule EXACTLY_ONE_IMAGE, for objects that did not pass through the API server's validation."""
    if (spec.image is None) == (spec.build is None):
        raise ValueError("spec needs exactly one of image or build")
    return spec


EXACTLY_ONE_IMAGE = rule("has(self.image) != has(self.build)", "spec needs exactly one of image or build")
AT_MOST_ONE_IMAGE = rule("!(has(self.image) && has(self.build))",
                         "spec takes image or build, not both (omit both for the default image)")


class Condition(ApiModel):
    """A Kubernetes condition: `Ready` summarises; others tell the stage (e.g. Built, Loaded)."""

    type: str = Field(max_length=64)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(default="", max_length=128)
    message: str = Field(default="", max_length=32768)
    last_transition_time: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    observed_generation: int | None = Field(default=None, ge=0)


class Ending(ApiModel):
    """How a load or run ended: the Ready reason and message it recorded. Its record keeps them, so that a refusal
    in between (an invalid spec, a GPU this cluster lacks), which replaces the Ready condition, does not hide them
    once it is fixed."""

    reason: str = Field(max_length=128)
    message: str = Field(default="", max_length=32768)


class Artifacts(ApiModel):
    """What is in the bucket under this object's prefix."""

    url: str = Field(description="gs:// URL of the object's prefix.")
    files: list[str] = Field(default_factory=list, description="The first file names, for a glance.")
    count: int = Field(default=0, ge=0, description="Number of files.")
    size: str = Field(default="0", description="Total size, human-readable (e.g. 13.5Gi).")
    bytes: int = Field(default=0, ge=0, description="Total size in bytes.")


class BuildUpload(ApiModel):
    """The signed URL answering spec.build.upload.requestID."""

    request_id: str = Field(alias="requestID")
    url: str = Field(description="PUT the tarball here with its Content-MD5 header (valid until expiresAt).")
    expires_at: str = Field(json_schema_extra={"format": "date-time"})
    stored: bool = Field(default=False, description="The bucket already holds a tarball with spec.build.upload.md5.")


class Startup(ApiModel):
    """Where a long-running pod is on its way to serving: why a GPU pod is not ready yet, in one word and a line."""

    phase: Phase = Field(
        description="Scheduling (waiting for a node, e.g. a GPU node scaling up), PullingImage (and mounting the "
                    "bucket), ImagePullFailed, CrashLooping, Loading (running, not ready yet: loading the weights), "
                    "Ready.")
    message: str = Field(default="", max_length=1024, description="What the pod's status says about it.")


class Status(ApiModel):
    """Status common to every kind (kstatus-compatible: a Ready condition and observedGeneration)."""

    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    ready: bool = False
    observed_generation: int | None = Field(default=None, ge=0)
    image: str | None = Field(default=None, description="The image that runs (built images are recorded here).")
    built_from: str | None = Field(default=None, description="Which spec.build the built image came from.")
    build_upload: BuildUpload | None = None


class ArtifactStatus(Status):
    """Status of kinds that produce data in the bucket (Dataset, Model)."""

    artifacts: Artifacts | None = None
    source: str | None = Field(default=None, description="Where the data came from, for `kubectl get`.")


class DatasetVersion(ApiModel):
    """One immutable version of a Dataset: what its load wrote, summarised by the manifest's digest."""

    version: int = Field(ge=1)
    digest: str = Field(max_length=64, description="sha256 of the version's manifest (names, sizes, checksums).")
    files: int = Field(default=0, ge=0)
    bytes: int = Field(default=0, ge=0)
    time: str = Field(json_schema_extra={"format": "date-time"})
    image: str | None = Field(default=None, description="The loader image that wrote it.")


MetricValues = Annotated[dict[str, float], WithJsonSchema({
    "type": "object", "additionalProperties": {"type": "number"}, "maxProperties": 32,
    "description": "Metric name -> value, as the run wrote them to metrics.json."})]
