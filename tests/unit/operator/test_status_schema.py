"""Every status the loop's reconcilers write survives the API server: no field the CRD does not declare (it would
be pruned, and the next sync would read it back as missing), for each step of the loop."""

from collections.abc import Iterator
from typing import Any

import pytest

from modelplane.api.kinds import KINDS
from modelplane.api.model import MODEL
from modelplane.api.modelserver import ModelServerSpec
from modelplane.monitor.report import DriftReport, FeatureResult, Outliers, Window
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.common import JobState, RefState, RolloutState
from modelplane.reconcile.monitor import MonitorObserved
from modelplane.reconcile.server import ServerObserved, reconcile_server
from tests.support.facts import DEV_CLUSTER, owner
from tests.support.pruning import pruned, status_schema
from tests.support.scenarios import (
    DATA_V1,
    DATA_V2,
    FILES,
    NIGHTLY,
    load,
    run,
    serve,
)

KINDS_BY_PLURAL = {kind.plural: kind for kind in KINDS}
MONITORED = ModelServerSpec.model_validate({"model": {"name": "clf"}, "logging": {}, "monitoring": {}})


def statuses() -> Iterator[tuple[str, str, dict[str, Any]]]:
    first = load({}, 1, FILES, "2026-11-24T10:00:00+00:00")
    yield "datasets", "loaded", first.status
    yield "datasets", "unchanged", load(first.status, 2, FILES, "2026-11-24T11:00:00+00:00").status
    yield "datasets", "scheduled", reconcile(owner("Dataset", "feed"), NIGHTLY, first.status, DEV_CLUSTER,
                                             Observed(), "2026-11-28T09:00:00+00:00").status
    started, v1 = run({}, DATA_V1, {"accuracy": 0.8}, "2026-11-24T10:00:00+00:00")
    yield "models", "run started", started.status
    yield "models", "promoted", v1.status
    _, v2 = run(v1.status, DATA_V2, {"accuracy": 0.5}, "2026-11-24T11:00:00+00:00")
    yield "models", "not promoted", v2.status
    serving = serve(serve({}, 1, RolloutState()).status, 1, RolloutState(1, 1, 1, complete=True))
    yield "modelservers", "serving", serving.status
    yield "modelservers", "rolled back", serve(serve(serving.status, 2, RolloutState(1, 1, 1)).status, 2,
                                               RolloutState(2, 1, 1, stuck=True)).status
    yield from monitored()


def monitored() -> Iterator[tuple[str, str, dict[str, Any]]]:
    who, model = owner("ModelServer", "clf"), RefState(found=True, ready=True, url="gs://b/m/v3/", version=3)
    observed = ServerObserved(model=model, monitor=MonitorObserved(trained_on=("churn", 2)))
    waiting = reconcile_server(who, MONITORED, {}, DEV_CLUSTER, observed, "2026-12-03T09:20:00Z").status
    yield "modelservers", "monitoring waits", waiting
    started = reconcile_server(who, MONITORED, waiting, DEV_CLUSTER, observed, "2026-12-03T10:00:00Z").status
    yield "modelservers", "monitor run started", started
    report = DriftReport(window=Window(start="a", end="b"), model_version=3, samples=500, reference_samples=240,
                         reference="r", enough=True, drift=True, correction="holm", significance=0.05, message="m",
                         features=[FeatureResult(name="x", kind="numeric", test="ks", statistic=0.5, p_value=0.001,
                                                 adjusted_p_value=0.002, psi=0.4, drift=True)],
                         outliers=Outliers(method="robustZ", count=1, rate=0.002, threshold=0.05, flagged=False))
    done = ServerObserved(model=model, monitor=MonitorObserved(job=JobState(succeeded=True), report=report))
    yield "modelservers", "drift reported", reconcile_server(who, MONITORED, started, DEV_CLUSTER, done,
                                                             "2026-12-03T10:05:00Z").status
    failed = ServerObserved(model=model, monitor=MonitorObserved(job=JobState(failed=True, message="x")))
    yield "modelservers", "monitor run failed", reconcile_server(who, MONITORED, started, DEV_CLUSTER, failed,
                                                                 "2026-12-03T10:05:00Z").status


@pytest.mark.parametrize(("plural", "step", "status"), list(statuses()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_no_status_field_is_pruned(plural: str, step: str, status: dict[str, Any]) -> None:
    assert pruned(status_schema(plural), status) == []
    # And the operator's own check at the write (operator/sync.py) agrees, from the kind's status type.
    assert KINDS_BY_PLURAL[plural].status_problems(status) == []


def test_the_write_check_names_undeclared_keys_and_bad_values_and_lets_deletions_through() -> None:
    """What sync.write_status refuses to send: a misspelt key at any depth (the API server would prune it without a
    word), a value of the wrong type; a None (a merge patch deleting the key) passes."""
    status = {"ready": True, "latestVersion": None, "champoin": 2, "artifacts": {"url": "gs://b/x/", "cout": 3},
              "conditions": [{"type": "Ready", "status": "True", "reasn": "Trained"}]}
    assert MODEL.status_problems(status) == ["status.champoin: not declared by the status type",
                                             "status.artifacts.cout: not declared by the status type",
                                             "status.conditions[0].reasn: not declared by the status type"]
    assert MODEL.status_problems({"champion": "two"})[0].startswith("status.champion: ")
    assert MODEL.status_problems({"ready": False, "champion": None, "artifacts": None}) == []


def test_the_pruning_port_finds_an_undeclared_field() -> None:
    schema = status_schema("models")
    assert pruned(schema, {"champion": 1, "retrains": True, "versions": [{"version": 1, "extra": 2}],
                           "run": {"version": 1, "digest": "x"}}) == [".retrains", ".versions[0].extra", ".run.digest"]


def test_a_model_versions_record_is_kept_whole() -> None:
    """The ModelVersion's spec (the lineage) is pruned by the same rule: every field the operator writes is declared."""
    _, promoted = run({}, DATA_V1, {"accuracy": 0.8}, "2026-11-24T10:00:00+00:00")
    (record,) = [c for c in promoted.children if c["kind"] == "ModelVersion"]
    assert {"dataset", "metrics", "paramsDigest"} <= set(record["spec"])
    assert pruned(status_schema("modelversions", "spec"), record["spec"]) == []
