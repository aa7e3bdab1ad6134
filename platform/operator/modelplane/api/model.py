"""Model: weights imported by a loader container, or fine-tuned from a base Model on a Dataset."""

from pydantic import ConfigDict, Field, model_validator

from modelplane.api.common import (
    EXACTLY_ONE_IMAGE,
    ON_DELETE_DESCRIPTION,
    ArtifactStatus,
    ObjectRef,
    OnDelete,
    Workload,
    exactly_one_image,
    rule,
    validations,
)
from modelplane.api.resource import Kind, column

BASE_NEEDS_DATASET = rule(
    "!has(self.baseModel) || has(self.dataset)",
    "baseModel needs a dataset to fine-tune on: set spec.dataset.name (to import weights, omit baseModel)")


class ModelSpec(Workload):
    """Alone, a loader imports weights into /content/artifacts. With baseModel and dataset, a training run mounts
    them read-only at /content/model and /content/data and writes /content/artifacts."""

    model_config = ConfigDict(json_schema_extra=validations(EXACTLY_ONE_IMAGE, BASE_NEEDS_DATASET))

    base_model: ObjectRef | None = Field(default=None, description="The Model to fine-tune (needs dataset).")
    dataset: ObjectRef | None = Field(default=None, description="The Dataset to train on.")
    on_delete: OnDelete = Field(default="Retain", description=ON_DELETE_DESCRIPTION)

    _one_image = model_validator(mode="after")(exactly_one_image)


MODEL = Kind(
    kind="Model", plural="models", short_name="mdl",
    description="Model weights in the artifacts bucket: imported by a loader, or trained from a base Model on a "
                "Dataset.",
    spec=ModelSpec, status=ArtifactStatus,
    columns=(column("Size", ".status.artifacts.size", description="Total size of the weights"),
             column("Source", ".status.source", description="Where the weights came from"),
             column("Base", ".spec.baseModel.name", priority=1),
             column("Dataset", ".spec.dataset.name", priority=1)),
)
