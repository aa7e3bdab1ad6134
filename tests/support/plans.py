"""What a plan applies inside the cluster."""

from typing import Any

from infra.offline import Plan


def rendered(plan: Plan) -> list[dict[str, Any]]:
    """Every in-cluster object of the plan, as its ConfigGroups apply them."""
    return [o for group in plan.of_type("kubernetes:yaml/v2:ConfigGroup") for o in group.inputs["objs"]]
