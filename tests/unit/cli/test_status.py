"""The plugins read status through the kinds' status types (api/), the same the operator's writes are checked
against: a status they cannot read is one clear line with an exit code, never a KeyError."""

from typing import Any

import pytest

from modelplane.api.notebook import NotebookStatus
from modelplane.cli.cluster import is_ready, ready_condition, status_of
from modelplane.cli.errors import CliError, Exit


def test_a_status_is_read_by_its_kinds_names() -> None:
    notebook = {"kind": "Notebook", "metadata": {"name": "nb"},
                "status": {"ready": True, "tokenSecret": "t", "port": 8888, "pod": "nb-0",
                           "conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "m"}]}}
    status = status_of(notebook)
    assert isinstance(status, NotebookStatus) and (status.token_secret, status.port) == ("t", 8888)
    assert is_ready(notebook)
    assert (ready_condition(notebook).reason, ready_condition(notebook).message) == ("Running", "m")


def test_before_the_operator_writes_anything_the_ready_condition_is_unknown() -> None:
    fresh = {"kind": "Model", "metadata": {"name": "m"}}
    assert not is_ready(fresh) and ready_condition(fresh).status == "Unknown"


def test_a_status_the_plugin_cannot_read_is_a_clear_failure() -> None:
    with pytest.raises(CliError) as raised:
        status_of({"kind": "Notebook", "metadata": {"name": "nb"}, "status": {"port": "eighty"}})
    assert raised.value.code == Exit.FAILED
    assert str(raised.value).startswith("Notebook nb: its status is not what this plugin reads (status.port: Input "
                                        "should be a valid integer")


def test_ready_for_an_older_generation_is_not_ready_for_the_edit() -> None:
    """`kubectl applybuild --wait` waits for the edit it applied: a Dataset still Ready from the load that ran while
    it was edited (observedGeneration 1 of 2) is not it."""
    ready = {"type": "Ready", "status": "True", "reason": "Loaded", "message": "version 1"}
    def dataset(observed: int) -> dict[str, Any]:
        return {"kind": "Dataset", "metadata": {"name": "feed", "generation": 2},
                "status": {"ready": True, "observedGeneration": observed, "conditions": [ready]}}

    assert not is_ready(dataset(1)) and is_ready(dataset(2))
