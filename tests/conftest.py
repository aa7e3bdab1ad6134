"""Shared fixtures: the real Pulumi program, planned offline once per stack file."""

from typing import Any

import pytest

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
