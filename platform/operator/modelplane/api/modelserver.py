"""ModelServer: serve a Ready Model over HTTP inside the cluster (port 8080; no public endpoint)."""

from pydantic import ConfigDict, Field

from modelplane.api.common import AT_MOST_ONE_IMAGE, ApiModel, ObjectRef, Status, Workload, rule, validations
from modelplane.api.resource import SERVICE_NAME_RULE, Kind, column


class Autoscaling(ApiModel):
    """Horizontal autoscaling between minReplicas and maxReplicas."""

    model_config = ConfigDict(json_schema_extra=validations(rule(
        "self.minReplicas <= self.maxReplicas", "autoscaling.minReplicas must not exceed maxReplicas")))

    min_replicas: int = Field(default=1, ge=1, le=100, description="Fewest replicas (at least one keeps serving).")
    max_replicas: int = Field(ge=1, le=100, description="Most replicas; bounded by the GPU pool's maxNodes.")
    target_cpu_utilization: int = Field(default=80, ge=10, le=100, alias="targetCPUUtilization",
                                        description="Average CPU utilisation (percent) to scale on.")


class ServedModel(ObjectRef):
    """The Model to serve: its champion (what evaluation promoted), or a pinned version."""

    version: int | None = Field(default=None, ge=1,
                                description="Serve this version instead of the champion (a ModelVersion).")


class ModelServerSpec(Workload):
    """Serves the model mounted read-only at /content/model; the default image is an OpenAI-compatible server."""

    model_config = ConfigDict(json_schema_extra=validations(AT_MOST_ONE_IMAGE))

    model: ServedModel = Field(description="The Model to serve; the server waits until it is Ready.")
    replicas: int = Field(default=1, ge=0, le=100, description="Replicas (the starting count with autoscaling).")
    autoscaling: Autoscaling | None = None
    rollout_deadline_seconds: int = Field(
        default=1800, ge=60, le=86400,
        description="A rollout to a new version that is not ready in this time is rolled back to the last good one.")


class Served(ApiModel):
    """A version of the Model and where its weights are."""

    version: int | None = Field(default=None, description="The Model version.")
    url: str = Field(max_length=2048, description="gs:// URL of its weights.")


class ModelServerStatus(Status):
    replicas: int = 0
    ready_replicas: int = 0
    url: str | None = Field(default=None, description="In-cluster URL of the server.")
    served_version: int | None = Field(default=None, description="The version the Deployment serves (or rolls to).")
    target: Served | None = Field(default=None, description="What the Deployment serves or rolls to.")
    last_good: Served | None = Field(default=None, description="The last version that rolled out fully.")
    rejected: list[int] = Field(default_factory=list, max_length=20,
                                description="Versions whose rollout failed: not tried again.")


MODEL_SERVER = Kind(
    kind="ModelServer", plural="modelservers", short_name="msrv",
    description="Serves a Model over HTTP inside the cluster.",
    spec=ModelServerSpec, status=ModelServerStatus,
    columns=(column("Model", ".spec.model.name"),
             column("Version", ".status.servedVersion", "integer", "The Model version served"),
             column("Replicas", ".status.readyReplicas", "integer", "Replicas ready to serve"),
             column("GPU", ".spec.resources.gpu.type", priority=1)),
    name_rules=(SERVICE_NAME_RULE,),
)
