"""The controller table: per kind, how it is observed and reconciled, what it waits for, and whom its changes
concern. handlers.py watches its kinds from it; sync.py runs its rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from modelplane.api.dataset import DATASET
from modelplane.api.model import MODEL
from modelplane.api.modelserver import MODEL_SERVER
from modelplane.api.notebook import IDLE_SUSPENDED_ANNOTATION, NOTEBOOK
from modelplane.api.resource import Kind
from modelplane.cluster import ClusterFacts
from modelplane.meta import Owner
from modelplane.operator.context import Context
from modelplane.operator.observe.artifacts import observe_artifacts, retrains_on_drift
from modelplane.operator.observe.notebook import observe_notebook
from modelplane.operator.observe.server import observe_server
from modelplane.reconcile.artifacts import at_rest, reconcile, stamp_endings
from modelplane.reconcile.common import Outcome
from modelplane.reconcile.inputs import references
from modelplane.reconcile.notebook import reconcile_notebook
from modelplane.reconcile.server import reconcile_server


def drift_retrains(server: dict[str, Any]) -> list[tuple[str, str]]:
    """The Model to sync when a server that retrains it on drift has reported drift."""
    model = retrains_on_drift(server)
    drifted = (((server.get("status") or {}).get("monitoring") or {}).get("lastDrift"))
    return [(MODEL.kind, model)] if model and drifted else []




def idle_mark_changed(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A notebook whose idle-suspension annotation was added or removed (`kubectl notebook NAME` resuming it) has no
    new generation: queue it when the annotation and its status disagree."""
    meta = body.get("metadata") or {}
    marked = IDLE_SUSPENDED_ANNOTATION in (meta.get("annotations") or {})
    shown = bool(((body.get("status") or {}).get("idle") or {}).get("suspendedAt"))
    return [(NOTEBOOK.kind, meta["name"])] if marked != shown else []


@dataclass(frozen=True)
class Controller:
    """How one kind is observed and reconciled; `inputs` names the objects whose readiness it waits for."""

    kind: Kind
    observe: Callable[[Context, Owner, Any, dict[str, Any]], Awaitable[Any]]  # (context, owner, spec, the object)
    reconcile: Callable[[Owner, Any, dict[str, Any], ClusterFacts, Any, str], Outcome]
    inputs: Callable[[Any], list[tuple[str, str]]]
    # (owner, spec as stored, status): whether nothing is left to do until the object changes (sync.at_rest); None:
    # a kind whose objects always have something to do (children to keep, pods to watch).
    settled: Callable[[Owner, dict[str, Any], dict[str, Any]], bool] | None = None
    # The status as an earlier operator wrote it, brought up to what this one reads (before anything reads it).
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # Objects that act on this one's status (not only on its readiness): queued on each of its events.
    notifies: Callable[[dict[str, Any]], list[tuple[str, str]]] = lambda body: []


CONTROLLERS = {c.kind.kind: c for c in (
    Controller(DATASET, observe_artifacts, reconcile, lambda spec: [], settled=at_rest, upgrade=stamp_endings),
    Controller(MODEL, observe_artifacts, reconcile, lambda spec: [(r.kind, r.name) for r in references(spec)],
               settled=at_rest, upgrade=stamp_endings),
    Controller(MODEL_SERVER, observe_server, reconcile_server, lambda spec: [(MODEL.kind, spec.model.name)],
               notifies=drift_retrains),
    Controller(NOTEBOOK, observe_notebook, reconcile_notebook,
               lambda spec: [(r.kind, r.name) for r in references(spec)], notifies=idle_mark_changed),
)}

