"""The PodMonitoring port refuses what the upstream CRD and managed Prometheus refuse, and takes what they take."""

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.podmonitoring import problems, prometheus_duration

VALID: dict[str, Any] = {
    "apiVersion": "monitoring.googleapis.com/v1", "kind": "PodMonitoring",
    "metadata": {"name": "m", "namespace": "ns", "labels": {"a": "b"}},
    "spec": {"selector": {"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "k", "operator": "Exists"}]},
             "endpoints": [{"port": "metrics", "interval": "30s"}, {"port": 8080, "path": "/m", "interval": "1m30s",
                                                                    "timeout": "10s", "scheme": "http"}]},
}


def changed(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    obj = copy.deepcopy(VALID)
    change(obj["spec"])
    return obj


def test_a_valid_object_is_taken_whole() -> None:
    assert problems(VALID) == []


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda s: s.pop("selector"), "'selector' is a required property"),
    (lambda s: s.update(endpoints=[]), "should be non-empty"),
    (lambda s: s.update(endpoints=[{"port": "m", "interval": "30s"}] * 11), "is too long"),
    (lambda s: s["endpoints"][0].pop("interval"), "'interval' is a required property"),
    (lambda s: s["endpoints"][0].pop("port"), "'port' is a required property"),
    (lambda s: s["endpoints"][0].update(port=""), "spec.endpoints.0.port: '' should be non-empty"),
    (lambda s: s["endpoints"][0].update(port=0), "spec.endpoints[0].port: Port is required"),
    (lambda s: s["endpoints"][0].update(port=1.5), "is not of type 'integer', 'string'"),
    (lambda s: s["endpoints"][0].update(interval="30 s"), "'30 s' is not a Prometheus duration"),
    (lambda s: s["endpoints"][1].update(timeout="1.5s"), "'1.5s' is not a Prometheus duration"),
    (lambda s: s["endpoints"][0].update(scheme="tcp"), "is not one of ['http', 'https']"),
    (lambda s: s["endpoints"][0].update(intervall="30s"), "spec.endpoints[0].intervall: not in the CRD's schema"),
    (lambda s: s["selector"]["matchExpressions"][0].update(values=["v"]), "Exists takes no values"),
    (lambda s: s["selector"]["matchExpressions"][0].update(operator="In"), "In takes at least one value"),
    (lambda s: s["selector"]["matchExpressions"][0].update(operator="Has"), "'Has' is not an operator"),
])
def test_what_upstream_refuses_is_refused(change: Callable[[dict[str, Any]], Any], fragment: str) -> None:
    found = problems(changed(change))
    assert any(fragment in problem for problem in found), found


def test_only_podmonitorings_are_checked() -> None:
    assert problems({**VALID, "apiVersion": "monitoring.googleapis.com/v1alpha1"})


@pytest.mark.parametrize(("duration", "valid"), [
    ("30s", True), ("1m30s", True), ("1h", True), ("500ms", True), ("2w1d", True), ("0", True),
    ("", False), ("1.5s", False), ("30", False), ("1s1m", False), ("-1s", False), ("1us", False)])
def test_prometheus_durations(duration: str, valid: bool) -> None:
    """As prometheus/common model.ParseDuration: units in order y w d h m s ms, integers only, `0` alone."""
    assert prometheus_duration(duration) is valid
