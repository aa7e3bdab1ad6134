"""The checked-in CRDs are current with the API types, structural, and usable from `kubectl get`/`explain`."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api import KINDS, Kind
from modelplane.api.crd import CRDS_DIR, stale, write

CRDS = {kind.kind: yaml.safe_load((CRDS_DIR / f"{kind.plural}.yaml").read_text()) for kind in KINDS}


def schema(kind: Kind) -> dict[str, Any]:
    schema_: dict[str, Any] = CRDS[kind.kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema_


def nodes(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, prop in node.get("properties", {}).items():
        yield from nodes(prop, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}{{}}")


def test_checked_in_crds_are_current() -> None:
    assert stale() == [], "run: python -m modelplane.api.crd"


def test_stale_detects_an_edit_and_a_stray_file(tmp_path: Path) -> None:
    write(tmp_path)
    assert stale(tmp_path) == []
    models = tmp_path / "models.yaml"
    models.write_text(models.read_text().replace("shortNames:\n    - mdl", "shortNames:\n    - m"))
    (tmp_path / "old.yaml").write_text("{}")
    assert stale(tmp_path) == ["models.yaml", "old.yaml"]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_only_metadata_params_and_quantities_keep_unknown_content(kind: Kind) -> None:
    """Structurality is tests/unit/api/test_structural.py's; this pins where the schema lets content through
    unchecked."""
    open_nodes = [path for path, node in nodes(schema(kind), kind.kind)
                  if node.get("x-kubernetes-preserve-unknown-fields") or node == {"type": "object"}]
    workload = [f"{kind.kind}.spec.params", f"{kind.kind}.spec.resources.cpu", f"{kind.kind}.spec.resources.memory",
                f"{kind.kind}.spec.resources.disk"]
    monitor = [f"ModelServer.spec.monitoring.resources.{q}" for q in ("cpu", "memory", "disk")]
    assert sorted(open_nodes) == sorted([f"{kind.kind}.metadata", *(monitor if kind.kind == "ModelServer" else []),
                                         *([] if kind.record else workload)])


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_spec_field_explains_itself(kind: Kind) -> None:
    """`kubectl explain <kind>.spec...` has something to say about every field."""
    missing = [path for path, node in nodes(schema(kind)["properties"]["spec"], "spec")
               if path != "spec" and not path.endswith(("[]", "{}")) and not node.get("description")]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_names_columns_and_status(kind: Kind) -> None:
    crd = CRDS[kind.kind]
    assert crd["metadata"]["name"] == f"{kind.plural}.modelplane.dev"
    names = crd["spec"]["names"]
    assert names["categories"] == ["modelplane"]
    assert crd["spec"]["scope"] == "Namespaced"
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    # A record (ModelVersion) has no Ready to show: it is written once, complete.
    assert (columns[:2] == ["Ready", "Reason"]) != kind.record and columns[-1] == "Age"
    status = schema(kind)["properties"]["status"]["properties"]
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"} <= set(
        conditions["items"]["properties"])
    assert {"ready", "observedGeneration", "image"} <= set(status)


def test_short_names_and_kind_specific_columns() -> None:
    def columns(kind: str) -> list[str]:
        return [c["name"] for c in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]]

    assert {k: CRDS[k]["spec"]["names"]["shortNames"] for k in CRDS} == {
        "Dataset": ["ds"], "Model": ["mdl"], "ModelServer": ["msrv"], "Notebook": ["nb"], "ModelVersion": ["mv"]}
    assert {"Size", "Source"} <= set(columns("Dataset")) and {"Size", "Source"} <= set(columns("Model"))
    assert {"Model", "Replicas"} <= set(columns("ModelServer"))
    assert {"GPU", "Suspended"} <= set(columns("Notebook"))


def test_reason_column_reads_the_ready_condition() -> None:
    for crd in (CRDS[kind.kind] for kind in KINDS if not kind.record):
        (reason,) = [c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"] if c["name"] == "Reason"]
        assert reason["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
