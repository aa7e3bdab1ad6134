"""The plan layer's fixtures: the real Pulumi program, planned offline once per stack file."""

import pytest

from infra.offline import Plan
from tests.support.plans import STACKS, plan_for


@pytest.fixture(params=STACKS)
def stack_plan(request: pytest.FixtureRequest) -> Plan:
    return plan_for(request.param)


@pytest.fixture
def dev_plan() -> Plan:
    return plan_for("dev")


@pytest.fixture
def prod_plan() -> Plan:
    return plan_for("prod")
