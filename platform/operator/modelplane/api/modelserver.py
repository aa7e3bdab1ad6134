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


class ModelServerSpec(Workload):
    """Serves the model mounted read-only at /content/model; the default image is an OpenAI-compatible server."""

    model_config = ConfigDict(json_schema_extra=validations(AT_MOST_ONE_IMAGE))

    model: ObjectRef = Field(description="The Model to serve; the server waits until it is Ready.")
    replicas: int = Field(default=1, ge=0, le=100, description="Replicas (the starting count with autoscaling).")
    autoscaling: Autoscaling | None = None


class ModelServerStatus(Status):
    replicas: int = 0
    ready_replicas: int = 0
    url: str | None = Field(default=None, description="In-cluster URL of the server.")


MODEL_SERVER = Kind(
    kind="ModelServer", plural="modelservers", short_name="msrv",
    description="Serves a Model over HTTP inside the cluster.",
    spec=ModelServerSpec, status=ModelServerStatus,
    columns=(column("Model", ".spec.model.name"),
             column("Replicas", ".status.readyReplicas", "integer", "Replicas ready to serve"),
             column("GPU", ".spec.resources.gpu.type", priority=1)),
    name_rules=(SERVICE_NAME_RULE,),
)
