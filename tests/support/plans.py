"""The stack's offline plans (the real Pulumi program against Pulumi's mocks), made once per stack per session, and
what a plan applies inside the cluster."""

from __future__ import annotations

from typing import Any

from infra.offline import Plan, read_stack_values, run_program

STACKS = ("dev", "prod")
_plans: dict[str, Plan] = {}


def plan_for(stack: str) -> Plan:
    """The plan of a checked-in stack file; the program runs once per stack per session."""
    if stack not in _plans:
        _plans[stack] = run_program(stack, read_stack_values(stack))
    return _plans[stack]


def rendered(plan: Plan) -> list[dict[str, Any]]:
    """Every in-cluster object of the plan, as its ConfigGroups apply them."""
    return [o for group in plan.of_type("kubernetes:yaml/v2:ConfigGroup") for o in group.inputs["objs"]]
