"""Model: weights imported by a loader container, or trained from a base Model on a Dataset, as versions.

Every run writes a new version `<ns>/models/<name>/v<N>/` and is recorded as an immutable ModelVersion with its
lineage and metrics. With `retrain`, a new version of the Dataset starts a run that warm-starts from the champion.
With `evaluation`, a version becomes the champion only when it beats the champion; `status.artifacts` (what servers,
notebooks and fine-tunes read) is always the champion's.
"""

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from modelplane.api.common import (
    EXACTLY_ONE_IMAGE,
    ON_DELETE_DESCRIPTION,
    REQUEST_ID_RULE,
    ApiModel,
    ArtifactStatus,
    Ending,
    MetricValues,
    ObjectRef,
    OnDelete,
    RequestID,
    Resources,
    Workload,
    exactly_one_image,
    rule,
    validations,
)
from modelplane.api.resource import Kind, column

BASE_NEEDS_DATASET = rule(
    "!has(self.baseModel) || has(self.dataset)",
    "baseModel needs a dataset to fine-tune on: set spec.dataset.name (to import weights, omit baseModel)")


RETRAIN_NEEDS_DATASET = rule(
    "!has(self.retrain) || has(self.dataset)",
    "retrain follows a dataset's versions: set spec.dataset.name")
MAX_VERSIONS = 50
MAX_NODES = 64
NODES_NEED_TRAINING = rule(
    "!has(self.resources.nodes) || self.resources.nodes == 1 || has(self.baseModel)",
    "resources.nodes > 1 is for training runs: set spec.baseModel and spec.dataset (an import runs on one node)")


class TrainingResources(Resources):
    """What each pod requests, and how many pods a training run spreads over."""

    model_config = ConfigDict(json_schema_extra=validations(rule(
        "!has(self.nodes) || self.nodes == 1 || has(self.gpu)",
        "resources.nodes > 1 needs resources.gpu: multi-node training is for GPUs")))

    nodes: int = Field(
        default=1, ge=1, le=MAX_NODES,
        description="Pods (nodes) of a training run, each with these resources, run as one gang-scheduled JobSet "
                    "with torchrun's rendezvous in their environment; 1 to 64, more than 1 needs a GPU.")


class Retrain(ApiModel):
    """Train again when the Dataset has a new version (or on request), warm-starting from `from`."""

    from_: Literal["champion", "latest", "base"] = Field(
        default="champion", alias="from",
        description="What the run starts from: the champion version, the latest version, or the base model only.")
    cooldown_seconds: int = Field(default=0, ge=0, le=30 * 86400,
                                  description="At least this long between the starts of two runs.")
    request_id: RequestID | None = Field(
        default=None, alias="requestID", description="A new value starts a run now, new data or not.",
        json_schema_extra=validations(rule(REQUEST_ID_RULE, "retrain.requestID must be letters, digits and '-'")))


class Metric(ApiModel):
    """A metric the run reports in metrics.json, and which way is better."""

    name: str = Field(max_length=63, pattern="^[A-Za-z_][A-Za-z0-9_.-]*$", description="A key of metrics.json.")
    goal: Literal["maximize", "minimize"] = Field(default="maximize", description="Whether higher or lower is better.")
    threshold: float | None = Field(default=None, description="A version must reach this to be promoted.")


class Evaluation(ApiModel):
    """Promote a new version to champion only when it is better: the first metric decides, every threshold holds."""

    metrics: list[Metric] = Field(min_length=1, max_length=8, description="The first one decides promotion.")
    min_improvement: float = Field(default=0, ge=0,
                                   description="How much better than the champion the first metric must be.")


class ModelSpec(Workload):
    """Alone, a loader imports weights into /content/artifacts. With baseModel and dataset, a training run mounts
    them read-only at /content/model and /content/data and writes /content/artifacts."""

    model_config = ConfigDict(json_schema_extra=validations(EXACTLY_ONE_IMAGE, BASE_NEEDS_DATASET,
                                                            RETRAIN_NEEDS_DATASET, NODES_NEED_TRAINING))

    resources: TrainingResources = Field(default_factory=TrainingResources, json_schema_extra={"default": {}})
    base_model: ObjectRef | None = Field(default=None, description="The Model to fine-tune (needs dataset).")
    dataset: ObjectRef | None = Field(default=None, description="The Dataset to train on.")
    on_delete: OnDelete = Field(default="Retain", description=ON_DELETE_DESCRIPTION)
    retrain: Retrain | None = Field(default=None, description="Train again on each new version of the dataset.")
    evaluation: Evaluation | None = Field(
        default=None, description="Promote only better versions; without it every successful version is promoted.")
    champion: int | None = Field(
        default=None, ge=1, description="Pin the champion to this version (a manual promotion or a rollback); "
                                        "unset, promotion follows evaluation.")

    _one_image = model_validator(mode="after")(exactly_one_image)


class Run(ApiModel):
    """The latest run: the version it makes, and from what."""

    version: int = Field(ge=1)
    generation: int = Field(ge=1)
    trigger: str = Field(max_length=256, description="Why it runs: the spec changed, new data, or a request.")
    dataset_version: int | None = None
    parent: int | None = Field(default=None, description="The version it warm-starts from.")
    request_id: str | None = Field(default=None, alias="requestID")
    spec_digest: str = Field(default="", max_length=64,
                             description="What the run was made from: a new digest is a new spec, and a new run.")
    started: str = Field(json_schema_extra={"format": "date-time"})
    nodes: int | None = Field(default=None, ge=2, le=MAX_NODES,
                              description="The pods of a multi-node run (its JobSet); absent for one.")
    resumes: int | None = Field(default=None, ge=0,
                                description="Pods a disruption took (spot preemption, a drain); each resumed from "
                                            "the run's checkpoints.")
    ended: Ending | None = Field(default=None, description="How it ended; absent while it runs.")


class VersionSummary(ApiModel):
    version: int = Field(ge=1)
    dataset_version: int | None = None
    metrics: MetricValues = Field(default_factory=dict)
    verdict: str = Field(default="", max_length=1024, description="Why it was or was not promoted.")


class ModelStatus(ArtifactStatus):
    latest_version: int | None = None
    champion: int | None = Field(default=None, description="The version servers serve (status.artifacts is its).")
    run: Run | None = None
    versions: list[VersionSummary] = Field(default_factory=list, max_length=MAX_VERSIONS,
                                           description="The newest versions, oldest first.")


MODEL = Kind(
    kind="Model", plural="models", short_name="mdl",
    description="Model weights in the artifacts bucket: imported by a loader, or trained from a base Model on a "
                "Dataset, as versions with a champion.",
    spec=ModelSpec, status=ModelStatus,
    columns=(column("Champion", ".status.champion", "integer", "The version that is served"),
             column("Latest", ".status.latestVersion", "integer", "The newest version"),
             column("Size", ".status.artifacts.size", description="Total size of the weights"),
             column("Source", ".status.source", description="Where the weights came from"),
             column("Base", ".spec.baseModel.name", priority=1),
             column("Dataset", ".spec.dataset.name", priority=1)),
)
