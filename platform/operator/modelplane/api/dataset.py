"""Dataset: data loaded into the bucket by a loader container, as immutable versions.

Each load writes a new prefix `<ns>/datasets/<name>/v<N>/`. A load whose manifest (every file's name, size and
checksums) has the digest of the latest version makes no new version (reason `Unchanged`), so nothing retrains for
nothing. A load runs when the Dataset is created, when `spec.reload.requestID` changes, and on `spec.schedule`.
"""

from pydantic import ConfigDict, Field, model_validator

from modelplane.api.common import (
    EXACTLY_ONE_IMAGE,
    ON_DELETE_DESCRIPTION,
    REQUEST_ID_RULE,
    ApiModel,
    ArtifactStatus,
    DatasetVersion,
    Ending,
    OnDelete,
    RequestID,
    Schedule,
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
    "a Dataset's loader is immutable: image, build, command and params cannot change; set spec.reload.requestID to "
    "load new data from the same source, or create a new Dataset for another source")
MAX_VERSIONS = 50


class Reload(ApiModel):
    """Load again now: a new requestID starts a load (what a user or CI sets when the source has new data)."""

    request_id: RequestID = Field(alias="requestID", description="Any new value starts one load.",
                                  json_schema_extra=validations(rule(
                                      REQUEST_ID_RULE, "reload.requestID must be letters, digits and '-'")))


class DatasetSpec(Workload):
    """A loader container writes the data to /content/artifacts; each load is a new version if the data changed."""

    model_config = ConfigDict(json_schema_extra=validations(EXACTLY_ONE_IMAGE, SOURCE_IMMUTABLE))

    on_delete: OnDelete = Field(default="Retain", description=ON_DELETE_DESCRIPTION)
    reload: Reload | None = Field(default=None, description="Load again, into a new version if the data changed.")
    schedule: Schedule | None = Field(default=None, description="Load again on a schedule.")
    keep_last: int = Field(default=10, ge=1, le=MAX_VERSIONS,
                           description="How many versions status.versions lists (the newest).")

    _one_image = model_validator(mode="after")(exactly_one_image)


class Load(ApiModel):
    """The latest load: which version it writes, and why it ran."""

    number: int = Field(ge=1, description="Loads so far (the Job is named after it).")
    generation: int = Field(ge=1)
    version: int = Field(ge=1)
    trigger: str = Field(default="", max_length=256)
    started: str = Field(json_schema_extra={"format": "date-time"})
    spec_digest: str = Field(default="", max_length=64,
                             description="What it loads: a new digest (not a new schedule, keepLast or onDelete) "
                                         "is a new spec, and a new load.")
    image: str | None = Field(default=None, description="The image it runs (its version records it).")
    ended: Ending | None = Field(default=None, description="How it ended; absent while it runs.")


class DatasetStatus(ArtifactStatus):
    latest_version: int | None = Field(default=None, description="The newest version (what artifacts names).")
    versions: list[DatasetVersion] = Field(default_factory=list, max_length=MAX_VERSIONS,
                                           description="The newest versions, oldest first (spec.keepLast).")
    load: Load | None = Field(default=None, description="The load of the latest generation.")


DATASET = Kind(
    kind="Dataset", plural="datasets", short_name="ds",
    description="Data loaded into the artifacts bucket by a loader container, as immutable versions.",
    spec=DatasetSpec, status=DatasetStatus,
    columns=(column("Version", ".status.latestVersion", "integer", "The newest version"),
             column("Size", ".status.artifacts.size", description="Total size of the data"),
             column("Source", ".status.source", description="Where the data came from")),
)
