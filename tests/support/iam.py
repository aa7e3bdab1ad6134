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

import re
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


def workload(plan: Plan, tenant: str) -> str:
    """The principal a tenant's pods act as: their Kubernetes service account, by direct Workload Identity
    Federation (the offline plan's project number is the mocks')."""
    pool = plan.outputs["workloadPool"]
    return (f"principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/{pool}"
            f"/subject/ns/{tenant}/sa/modelplane-workload")


def account(email: str) -> str:
    """The IAM member of a Google service account."""
    return f"serviceAccount:{email}"


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


# A condition that is a disjunction of `startsWith` tests (what infra/buckets/access.py writes) admits every name
# under a prefix exactly when it admits the prefix itself: extending a name that starts with a string still does.
_STARTS_WITH = r'[\w.]+(\([^()]*\))?\.startsWith\("[^"]*"\)'
_PREFIX_TESTS = re.compile(rf"{_STARTS_WITH}( \|\| {_STARTS_WITH})*")


def prefix_access(plan: Plan, prefix: str, write: bool = False) -> set[str]:
    """The members that may read (or write) every object under `prefix` and list it: what a GCS FUSE mount of it
    (`only-dir`) or a deletion of it needs. Exact for prefix conditions, and refused for any other kind."""
    if not prefix.endswith("/"):
        raise ValueError(f"not a prefix: {prefix!r}")
    for grant in _grants(plan, READS):
        if "condition" in grant and not _PREFIX_TESTS.fullmatch(grant["condition"]["expression"]):
            raise ValueError(f"not a prefix condition, so one object name cannot stand for all under a prefix: "
                             f"{grant['condition']['expression']}")
    return object_access(plan, prefix, write) & listing_access(plan, prefix)
