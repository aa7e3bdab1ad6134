"""ModelVersion: the immutable record of one run of a Model, with its lineage, written by the operator.

`kubectl get modelversions` is a Model's history: what each version was trained on (dataset, version, digest), what
it warm-started from, with which image and parameters, when, and how it scored. The same lineage is written as
`lineage.json` beside the weights, so it outlives the cluster.
"""

from pydantic import ConfigDict, Field

from modelplane.api.common import ApiModel, MetricValues, Status, rule, validations
from modelplane.api.resource import Kind, column


class DatasetLineage(ApiModel):
    """The dataset version a run trained on."""

    name: str = Field(max_length=63, description="The Dataset.")
    version: int = Field(ge=1, description="Its version.")
    digest: str = Field(max_length=64, description="The digest of that version's manifest.")


class ModelVersionSpec(ApiModel):
    """What a run made and from what; written once by the operator, never changed."""

    model_config = ConfigDict(json_schema_extra=validations(rule("self == oldSelf", "a ModelVersion is immutable")))

    model: str = Field(max_length=63, description="The Model it is a version of.")
    version: int = Field(ge=1, description="The version number, counting from 1 per Model.")
    artifacts: str = Field(max_length=2048, description="gs:// URL of the version's weights.")
    dataset: DatasetLineage | None = Field(default=None, description="What it was trained on.")
    parent: int | None = Field(default=None, description="The version it warm-started from.")
    base_model: str | None = Field(default=None, max_length=63, description="The base Model it was trained from.")
    image: str = Field(max_length=1024, description="The image that ran.")
    params_digest: str = Field(max_length=64, description="sha256 of its params.")
    job: str = Field(max_length=63, description="The Job that ran.")
    started: str = Field(json_schema_extra={"format": "date-time"}, description="When the run started.")
    finished: str = Field(json_schema_extra={"format": "date-time"}, description="When the operator saw it end.")
    resumes: int | None = Field(default=None, ge=0, description="Times it resumed from its checkpoints after a "
                                                                 "disruption (a spot preemption, a drain).")
    metrics: MetricValues = Field(default_factory=dict)


MODEL_VERSION = Kind(
    kind="ModelVersion", plural="modelversions", short_name="mv",
    description="One version of a Model: its weights, lineage and metrics (written by the operator).",
    spec=ModelVersionSpec, status=Status, record=True,
    columns=(column("Model", ".spec.model"), column("Version", ".spec.version", "integer"),
             column("Dataset", ".spec.dataset.name"), column("Data version", ".spec.dataset.version", "integer"),
             column("Parent", ".spec.parent", "integer")),
)
