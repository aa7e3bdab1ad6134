"""IAM as Google Cloud applies it to the artifacts bucket, for asking "who may read this object?" of a plan.

Faithfulness: a bucket-level IAM binding grants its role on every object unless it has a condition; a condition is a
CEL expression evaluated by cel-python (the language IAM conditions are written in) over the two attributes Cloud
Storage gives it: `resource.name`, `projects/_/buckets/<bucket>/objects/<object>` for an object request or
`projects/_/buckets/<bucket>` for a listing, and `api.getAttribute("storage.googleapis.com/objectListPrefix", "")`,
the prefix a listing asks for (per the Cloud Storage IAM conditions documentation). Not modelled: role contents
beyond read/write (objectViewer reads; objectUser reads and writes), deny policies, and project-level grants
(the plan has no project-level storage roles; tests/plan/infra/test_program.py holds it to that).
"""

from __future__ import annotations

from typing import Any

import celpy
from celpy import celtypes

from infra.offline import Plan

READS = {"roles/storage.objectViewer", "roles/storage.objectUser"}
WRITES = {"roles/storage.objectUser"}
LIST_PREFIX = "storage.googleapis.com/objectListPrefix"


def _get_attribute(api: Any, name: Any, default: Any) -> Any:
    return api.get(name, default)


def condition_allows(expression: str, resource_name: str, list_prefix: str = "") -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(expression), functions={"getAttribute": _get_attribute})
    activation = {
        "resource": celtypes.MapType({celtypes.StringType("name"): celtypes.StringType(resource_name)}),
        "api": celtypes.MapType({celtypes.StringType(LIST_PREFIX): celtypes.StringType(list_prefix)}),
    }
    return bool(program.evaluate(activation))


def _grants(plan: Plan, roles: set[str]) -> list[dict[str, Any]]:
    """The artifacts bucket's grants of `roles` (the plan holds other buckets' too)."""
    return [r.inputs for r in plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
            if r.inputs["role"] in roles and r.inputs["bucket"] == plan.outputs["bucket"]]


def object_access(plan: Plan, name: str, write: bool = False) -> set[str]:
    """The members that may read (or write) object `name` of the plan's bucket."""
    resource = f"projects/_/buckets/{plan.outputs['bucket']}/objects/{name}"
    return {g["member"] for g in _grants(plan, WRITES if write else READS)
            if "condition" not in g or condition_allows(g["condition"]["expression"], resource)}


def listing_access(plan: Plan, prefix: str) -> set[str]:
    """The members that may list the plan's bucket under `prefix`."""
    resource = f"projects/_/buckets/{plan.outputs['bucket']}"
    return {g["member"] for g in _grants(plan, READS)
            if "condition" not in g or condition_allows(g["condition"]["expression"], resource, prefix)}
