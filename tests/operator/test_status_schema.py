"""Every status the loop's reconcilers write survives the API server: no field the CRD does not declare (it would
be pruned, and the next sync would read it back as missing), for each step of the loop."""

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from modelplane.api.crd import CRDS_DIR
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.common import RolloutState
from tests.support.kube import DEV_CLUSTER, owner
from tests.support.pruning import pruned
from tests.support.scenarios import (
    DATA_V1,
    DATA_V2,
    FILES,
    NIGHTLY,
    load,
    run,
    serve,
)


def status_schema(plural: str, part: str = "status") -> dict[str, Any]:
    crd = yaml.safe_load((CRDS_DIR / f"{plural}.yaml").read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][part])


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


@pytest.mark.parametrize(("plural", "step", "status"), list(statuses()), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_no_status_field_is_pruned(plural: str, step: str, status: dict[str, Any]) -> None:
    assert pruned(status_schema(plural), status) == []


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
