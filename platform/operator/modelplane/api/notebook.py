"""Notebook: Jupyter on requested resources, opened through port-forward; suspend keeps its work."""

from pydantic import ConfigDict, Field

from modelplane.api.common import (
    AT_MOST_ONE_IMAGE,
    ON_DELETE_DESCRIPTION,
    ObjectRef,
    OnDelete,
    Startup,
    Status,
    Workload,
    rule,
    validations,
)
from modelplane.api.resource import SERVICE_NAME_RULE, Kind, column

# The StatefulSet's pods carry `controller-revision-hash: <name>-<hash>`: the ControllerRevision's name, a hash of
# at most 10 characters after a '-' (kubernetes pkg/controller/history: ControllerRevisionName, HashControllerRevision),
# and label values are at most 63 characters.
MAX_NOTEBOOK_NAME = 63 - 1 - 10
NOTEBOOK_NAME_RULE = rule(
    f"self.metadata.name.size() <= {MAX_NOTEBOOK_NAME}",
    f"metadata.name of a Notebook must be at most {MAX_NOTEBOOK_NAME} characters: its StatefulSet's pods carry the "
    "label controller-revision-hash=<name>-<10-character hash>, and label values are at most 63 characters")


class NotebookSpec(Workload):
    """A Jupyter server; its workspace (/content/artifacts) persists in the bucket across suspend and resume."""

    model_config = ConfigDict(json_schema_extra=validations(AT_MOST_ONE_IMAGE))

    model: ObjectRef | None = Field(default=None, description="A Model mounted read-only at /content/model.")
    dataset: ObjectRef | None = Field(default=None, description="A Dataset mounted read-only at /content/data.")
    suspend: bool = Field(default=False, description="true stops the pod and frees its GPU; the workspace stays.")
    on_delete: OnDelete = Field(default="Retain", description=ON_DELETE_DESCRIPTION)


class NotebookStatus(Status):
    startup: Startup | None = Field(default=None, description="The pods' way to ready, while they are not.")
    pod: str | None = Field(default=None, description="The pod to port-forward to.")
    port: int | None = Field(default=None, description="Jupyter's port in the pod.")
    token_secret: str | None = Field(default=None, description="Secret holding the Jupyter token (key: token).")
    workspace: str | None = Field(default=None, description="gs:// URL of the workspace (/content/artifacts).")


NOTEBOOK = Kind(
    kind="Notebook", plural="notebooks", short_name="nb",
    description="A Jupyter notebook on requested resources, reached with kubectl port-forward.",
    spec=NotebookSpec, status=NotebookStatus,
    columns=(column("GPU", ".spec.resources.gpu.type"),
             column("Suspended", ".spec.suspend", "boolean")),
    name_rules=(SERVICE_NAME_RULE, NOTEBOOK_NAME_RULE),
)
