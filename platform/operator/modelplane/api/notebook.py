"""Notebook: Jupyter on requested resources, opened through port-forward; suspend keeps its work."""

from pydantic import ConfigDict, Field

from modelplane.api.common import (
    AT_MOST_ONE_IMAGE,
    ON_DELETE_DESCRIPTION,
    ApiModel,
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


# What the operator writes on a Notebook it suspended for idleness (the time, RFC 3339); `kubectl notebook NAME` (or
# `kubectl annotate notebook NAME modelplane.dev/idle-suspended-`) removes it to resume. An annotation, not the
# user's spec.suspend, as Kubeflow's culler marks a culled Notebook with `kubeflow-resource-stopped`
# (components/notebook-controller/pkg/culler/culler.go, STOP_ANNOTATION): the spec stays what the user wrote.
IDLE_SUSPENDED_ANNOTATION = "modelplane.dev/idle-suspended"


class IdleCulling(ApiModel):
    """Suspend the notebook when Jupyter's kernels and terminals have done nothing, and no `kubectl notebook` sync has
    run, for `timeoutMinutes`; a Warning Event comes `warningMinutes` before. A busy kernel is never idle."""

    model_config = ConfigDict(json_schema_extra=validations(rule(
        "self.warningMinutes < self.timeoutMinutes", "idle.warningMinutes must be less than idle.timeoutMinutes")))

    timeout_minutes: int = Field(ge=5, le=7 * 24 * 60, description="Idle minutes before the notebook is suspended.")
    warning_minutes: int = Field(default=10, ge=1, le=24 * 60,
                                 description="Minutes of warning (an Event) before the suspension.")


class NotebookSpec(Workload):
    """A Jupyter server; its workspace (/content/artifacts) persists in the bucket across suspend and resume."""

    model_config = ConfigDict(json_schema_extra=validations(AT_MOST_ONE_IMAGE))

    model: ObjectRef | None = Field(default=None, description="A Model mounted read-only at /content/model.")
    dataset: ObjectRef | None = Field(default=None, description="A Dataset mounted read-only at /content/data.")
    suspend: bool = Field(default=False, description="true stops the pod and frees its GPU; the workspace stays.")
    idle: IdleCulling | None = Field(default=None, description="Suspend when idle (absent: never).")
    on_delete: OnDelete = Field(default="Retain", description=ON_DELETE_DESCRIPTION)


class IdleStatus(ApiModel):
    """What the operator last saw of a notebook's activity (spec.idle)."""

    since: str | None = Field(default=None, json_schema_extra={"format": "date-time"},
                              description="When Jupyter last became ready: no idleness is counted before.")
    last_activity: str | None = Field(default=None, json_schema_extra={"format": "date-time"},
                                      description="The newest kernel, terminal or sync activity seen.")
    suspend_at: str | None = Field(default=None, json_schema_extra={"format": "date-time"},
                                   description="Warned: suspended then unless it is used before.")
    suspended_at: str | None = Field(default=None, json_schema_extra={"format": "date-time"},
                                     description="When it was suspended for idleness.")


class NotebookStatus(Status):
    startup: Startup | None = Field(default=None, description="The pods' way to ready, while they are not.")
    pod: str | None = Field(default=None, description="The pod to port-forward to.")
    port: int | None = Field(default=None, description="Jupyter's port in the pod.")
    token_secret: str | None = Field(default=None, description="Secret holding the Jupyter token (key: token).")
    workspace: str | None = Field(default=None, description="gs:// URL of the workspace (/content/artifacts).")
    activity: str | None = Field(default=None, description="gs:// URL of the activity reports (with spec.idle).")
    idle: IdleStatus | None = Field(default=None, description="Idleness, with spec.idle.")


NOTEBOOK = Kind(
    kind="Notebook", plural="notebooks", short_name="nb",
    description="A Jupyter notebook on requested resources, reached with kubectl port-forward.",
    spec=NotebookSpec, status=NotebookStatus,
    columns=(column("GPU", ".spec.resources.gpu.type"),
             column("Suspended", ".spec.suspend", "boolean")),
    name_rules=(SERVICE_NAME_RULE, NOTEBOOK_NAME_RULE),
)
