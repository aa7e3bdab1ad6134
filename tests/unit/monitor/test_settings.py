"""MonitorSettings is params.json and a CRD piece at once: camelCase, structural when generated into a CRD, the API
server's defaulting of `{}` gives what the monitor itself defaults to, and what the operator writes today (its
spec.monitoring.detection, through the run's params ConfigMap) reads back unchanged."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelplane.api.crd import schema_of
from modelplane.api.modelserver import ModelServerSpec
from modelplane.api.monitoring import MonitorSettings
from modelplane.builders.workload import PARAMS_KEY
from modelplane.reconcile.monitor import MonitorObserved, reconcile_monitoring
from tests.support.apiserver import apply_defaults, schema_errors
from tests.support.facts import DEV_CLUSTER, owner
from tests.support.structural import structural_errors

SCHEMA = schema_of(MonitorSettings)


def test_the_schema_is_structural() -> None:
    root = {"type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                             "metadata": {"type": "object"}, "spec": SCHEMA}}
    assert structural_errors(root, status_subresource=False) == []


def test_the_api_servers_defaults_are_the_monitors() -> None:
    defaulted = apply_defaults({}, SCHEMA)
    assert defaulted == {"minSamples": 200, "significance": 0.05, "correction": "holm", "features": [],
                         "outliers": {"method": "isolationForest", "maxRate": 0.05}}
    assert MonitorSettings.model_validate(defaulted) == MonitorSettings.model_validate_json("{}")


@pytest.mark.parametrize("bad", [
    {"minSamples": 5}, {"correction": "fdr"}, {"features": ["x" * 129]}, {"significance": 0.5}, {"psiThreshold": 0},
    {"outliers": {"maxRate": 1}}])
def test_the_crd_and_the_monitor_refuse_the_same(bad: dict[str, object]) -> None:
    assert schema_errors(bad, SCHEMA)
    with pytest.raises(ValidationError):
        MonitorSettings.model_validate(bad)


def test_camel_case_on_the_wire_and_unknown_keys_ignored() -> None:
    settings = MonitorSettings.model_validate({"minSamples": 500, "psiThreshold": 0.25, "windowHours": 6,
                                               "outliers": {"method": "robustZ", "maxRate": 0.1}})
    assert (settings.min_samples, settings.psi_threshold, settings.outliers.max_rate) == (500, 0.25, 0.1)
    assert settings.model_dump(by_alias=True)["outliers"] == {"method": "robustZ", "maxRate": 0.1}


@pytest.mark.parametrize("detection", [{}, {"minSamples": 50, "significance": 0.01, "correction": "bonferroni",
                                            "psiThreshold": 0.25, "features": ["support_calls"],
                                            "outliers": {"method": "robustZ", "maxRate": 0.1}}])
def test_the_operators_params_json_reads_back_as_the_spec_said(detection: dict[str, object]) -> None:
    """The round trip: spec.monitoring.detection -> the run's params ConfigMap -> what the monitor reads."""
    spec = ModelServerSpec.model_validate({"model": {"name": "clf"}, "logging": {}, "monitoring": {
        "detection": detection, "requestID": "now"}})
    run = reconcile_monitoring(owner("ModelServer", "clf"), spec, {}, 3, DEV_CLUSTER,
                               MonitorObserved(trained_on=("churn", 2)), "2026-12-03T10:00:00Z")
    (params,) = [c for c in run.children if c["kind"] == "ConfigMap"]
    assert spec.monitoring is not None
    assert MonitorSettings.model_validate_json(params["data"][PARAMS_KEY]) == spec.monitoring.detection
