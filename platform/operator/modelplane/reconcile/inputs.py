"""The objects a spec reads (a fine-tune's base model and dataset, a notebook's model and dataset): what they are
called, where they are mounted, and whether they are there to mount yet."""

from __future__ import annotations

from dataclasses import dataclass

from modelplane.api.common import Workload
from modelplane.api.model import ModelSpec
from modelplane.api.notebook import NotebookSpec
from modelplane.api.reasons import missing
from modelplane.builders.workload import DATA_PATH, MODEL_PATH, Mount
from modelplane.reconcile.common import RefState, prefix_of_url


@dataclass(frozen=True)
class Reference:
    """A spec field naming another object, and where its data is mounted (read-only)."""

    field: str
    kind: str
    name: str
    path: str


def references(spec: Workload) -> list[Reference]:
    found = []
    if isinstance(spec, ModelSpec) and spec.base_model:
        found.append(Reference("baseModel", "Model", spec.base_model.name, MODEL_PATH))
    if isinstance(spec, NotebookSpec) and spec.model:
        found.append(Reference("model", "Model", spec.model.name, MODEL_PATH))
    if isinstance(spec, ModelSpec | NotebookSpec) and spec.dataset:
        found.append(Reference("dataset", "Dataset", spec.dataset.name, DATA_PATH))
    return found


def mount_inputs(spec: Workload, namespace: str, refs: dict[str, RefState],
                 require_ready: bool = False) -> tuple[list[Mount], tuple[str, str]]:
    """Read-only mounts of every input's last Ready data, or the (reason, message) of the first one missing.

    Servers and notebooks use the last Ready data even while a new generation is made; runs may require Ready now.
    """
    mounts = []
    for ref in references(spec):
        state = refs.get(ref.field, RefState(found=False))
        if not state.found:
            return [], (missing(ref.field, found=False),
                        f"{ref.kind} {ref.name!r} does not exist in namespace {namespace}; this starts when it is "
                        "created and Ready")
        if not state.url or (require_ready and not state.ready):
            return [], (missing(ref.field, found=True), f"waiting for {ref.kind} {ref.name!r} to be Ready")
        mounts.append(Mount(ref.field.lower(), prefix_of_url(state.url), ref.path, read_only=True))
    return mounts, ("", "")
