"""`modelplane plan` and `modelplane render` print the same bytes for the same stack, in every process.

GitOps diffs and plan reviews only mean something if an unchanged stack renders unchanged: no key order that
follows protobuf map or hash order, no `replicas: 1.0` because numbers crossed Pulumi's wire format as floats.
Order can depend on hash seeds and on the runtime's threads, so each run is its own process.
"""
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import main, render_plan
from infra.offline import Plan
from tests.support.plans import plan_for

# A YAML scalar that is a whole number written as a float: `maxLength: 4096.0`, `- 1.0` (a string would be quoted).
WHOLE_FLOAT = re.compile(r"(?:^|:|-)\s+-?\d+\.0\s*$", re.MULTILINE)


def test_plan_order_does_not_follow_registration_order() -> None:
    """The runtime registers resources from its threads, so siblings may arrive in any order."""
    plan = plan_for("dev")
    shuffled = Plan(stack=plan.stack, resources=list(reversed(plan.resources)), outputs=plan.outputs,
                    secret_outputs=plan.secret_outputs)
    assert render_plan(shuffled) == render_plan(plan)


def whole_floats(value: Any, path: str = "") -> Iterator[str]:
    """Where a parsed document holds a float that is a whole number."""
    if isinstance(value, float) and value.is_integer():
        yield f"{path}: {value}"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from whole_floats(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from whole_floats(item, f"{path}[{index}]")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_render_writes_integers_as_integers(stack: str, tmp_path: Path) -> None:
    assert main(["render", "--stack", stack, "--out", str(tmp_path)]) == 0
    for path in sorted(tmp_path.glob("*.yaml")):
        text = path.read_text()
        assert WHOLE_FLOAT.findall(text) == [], path.name
        assert [where for doc in yaml.safe_load_all(text) for where in whole_floats(doc)] == [], path.name
