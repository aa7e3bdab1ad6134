"""Every kind of the API, for the CRD generator and the operator."""

from modelplane.api.dataset import DATASET
from modelplane.api.model import MODEL
from modelplane.api.modelserver import MODEL_SERVER
from modelplane.api.modelversion import MODEL_VERSION
from modelplane.api.notebook import NOTEBOOK
from modelplane.api.resource import Kind

KINDS: tuple[Kind, ...] = (DATASET, MODEL, MODEL_SERVER, NOTEBOOK, MODEL_VERSION)


def kind_for(name: str) -> Kind:
    """The kind by Kind name or plural (`Model`, `models`)."""
    for kind in KINDS:
        if name in (kind.kind, kind.plural):
            return kind
    raise KeyError(f"no kind {name!r}; kinds: {', '.join(k.kind for k in KINDS)}")
