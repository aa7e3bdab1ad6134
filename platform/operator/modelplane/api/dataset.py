"""Dataset: data imported once into the bucket by a loader container; immutable afterwards."""

from pydantic import ConfigDict, Field, model_validator

from modelplane.api.common import (
    EXACTLY_ONE_IMAGE,
    ON_DELETE_DESCRIPTION,
    ArtifactStatus,
    OnDelete,
    Workload,
    exactly_one_image,
    rule,
    validations,
)
from modelplane.api.resource import Kind, column

# The source of a Dataset never changes: different data is a different Dataset, so nothing silently
# overwrites a prefix that Models were trained on. (CEL cannot see status, so this holds from creation on.)
SOURCE_IMMUTABLE = rule(
    "(has(self.image) ? self.image : '') == (has(oldSelf.image) ? oldSelf.image : '')"
    " && has(self.build) == has(oldSelf.build) && (!has(self.build) || self.build == oldSelf.build)"
    " && has(self.params) == has(oldSelf.params) && (!has(self.params) || self.params == oldSelf.params)"
    " && has(self.command) == has(oldSelf.command) && (!has(self.command) || self.command == oldSelf.command)",
    "a Dataset is immutable: image, build, command and params cannot change; create a new Dataset for new data")


class DatasetSpec(Workload):
    """A loader container writes the data to /content/artifacts, once."""

    model_config = ConfigDict(json_schema_extra=validations(EXACTLY_ONE_IMAGE, SOURCE_IMMUTABLE))

    on_delete: OnDelete = Field(default="Retain", description=ON_DELETE_DESCRIPTION)

    _one_image = model_validator(mode="after")(exactly_one_image)


DATASET = Kind(
    kind="Dataset", plural="datasets", short_name="ds",
    description="Data imported once into the artifacts bucket by a loader container; immutable once loaded.",
    spec=DatasetSpec, status=ArtifactStatus,
    columns=(column("Size", ".status.artifacts.size", description="Total size of the data"),
             column("Source", ".status.source", description="Where the data came from")),
)
