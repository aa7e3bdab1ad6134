"""The wiring: what the operator watches where, and which events queue which keys."""

from __future__ import annotations

from typing import Any, cast

from modelplane.meta import KIND_LABEL, MANAGED_BY, NAME_LABEL, NAMESPACE_LABEL
from modelplane.operator.context import Context
from modelplane.operator.controllers import CONTROLLERS
from modelplane.operator.handlers import child_changed, job_changed, object_changed, watches
from modelplane.operator.kube import Kube
from modelplane.operator.login import Credentials
from tests.support.facts import DEV_CLUSTER, NAMESPACE

DATASET, MODEL = CONTROLLERS["Dataset"], CONTROLLERS["Model"]


def context(namespaces: tuple[str, ...] = (NAMESPACE,)) -> Context:
    """A Context for handlers, which touch no client: the store and signer are never reached."""
    return Context(kube=Kube(Credentials("https://k8s.invalid")), cluster=DEV_CLUSTER, store=cast(Any, None),
                   signer=cast(Any, None), namespaces=namespaces)


def queued(ctx: Context) -> set[tuple[str, str, str]]:
    return set(ctx.queue._dirty)


def obj(kind: str, name: str, generation: int = 1, observed: int | None = None, ready: bool = False,
        spec: dict[str, Any] | None = None, reason: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"ready": ready}
    if observed is not None:
        status["observedGeneration"] = observed
    if reason:
        status["conditions"] = [{"type": "Ready", "status": str(ready), "reason": reason}]
    return {"kind": kind, "metadata": {"name": name, "namespace": NAMESPACE, "generation": generation,
                                       "uid": f"uid-{name}"},
            "spec": spec or {}, "status": status}


def test_each_served_namespace_gets_the_kinds_and_children_and_the_build_namespace_only_jobs() -> None:
    paths = {(informer.path, informer.query.get("labelSelector", "")) for informer in watches(context(("a", "b")))}
    selector = "app.kubernetes.io/managed-by=modelplane"
    for namespace in ("a", "b"):
        assert {(f"/apis/modelplane.dev/v1alpha1/namespaces/{namespace}/{c.kind.plural}", "")
                for c in CONTROLLERS.values()} <= paths
        assert {(f"/apis/batch/v1/namespaces/{namespace}/jobs", selector),
                (f"/apis/apps/v1/namespaces/{namespace}/deployments", selector),
                (f"/apis/apps/v1/namespaces/{namespace}/statefulsets", selector),
                (f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/{namespace}/jobsets", selector)} <= paths
    build = {path for path, _ in paths if f"/namespaces/{DEV_CLUSTER.build_namespace}/" in path}
    assert build == {f"/apis/batch/v1/namespaces/{DEV_CLUSTER.build_namespace}/jobs"}
    assert len(paths) == 2 * (len(CONTROLLERS) + 4) + 1


def test_without_namespaces_each_resource_is_watched_across_all() -> None:
    paths = {informer.path for informer in watches(context(()))}
    assert "/apis/batch/v1/jobs" in paths and "/apis/modelplane.dev/v1alpha1/datasets" in paths
    assert len(paths) == len(CONTROLLERS) + 4


def test_a_new_object_or_generation_is_queued_and_its_own_status_write_is_not() -> None:
    ctx, key = context(), ("Dataset", NAMESPACE, "d")
    object_changed(ctx, DATASET, None, obj("Dataset", "d"))  # listed
    assert queued(ctx) == {key} and key in ctx.known
    ctx.queue._dirty.clear()
    object_changed(ctx, DATASET, "MODIFIED", obj("Dataset", "d", generation=1, observed=1))  # its status write
    assert queued(ctx) == set()
    object_changed(ctx, DATASET, "MODIFIED", obj("Dataset", "d", generation=2, observed=1))  # a spec change
    assert queued(ctx) == {key}
    object_changed(ctx, DATASET, "DELETED", obj("Dataset", "d"))
    assert key not in ctx.known


def test_an_input_becoming_ready_queues_what_waits_for_it() -> None:
    ctx = context()
    model = obj("Model", "m", spec={"image": "trainer:1", "baseModel": {"name": "b"}, "dataset": {"name": "d"}})
    object_changed(ctx, MODEL, "ADDED", model)
    ctx.queue._dirty.clear()
    object_changed(ctx, DATASET, "MODIFIED", obj("Dataset", "d", observed=1))  # not ready: nobody to tell
    assert queued(ctx) == set()
    object_changed(ctx, DATASET, "MODIFIED", obj("Dataset", "d", observed=1, ready=True))
    assert queued(ctx) == {("Model", NAMESPACE, "m")}


def test_a_new_job_with_nothing_in_its_status_does_not_queue_its_owner_and_every_change_after_does() -> None:
    ctx, owner = context(), ("Dataset", NAMESPACE, "d")
    labels = {**MANAGED_BY, KIND_LABEL: "Dataset", NAME_LABEL: "d"}

    def job(**status: Any) -> dict[str, Any]:
        return {"kind": "Job", "metadata": {"name": "j", "namespace": NAMESPACE, "uid": "u1", "labels": labels},
                "spec": {}, "status": status}

    job_changed(ctx, "ADDED", job())  # its owner's sync just created it
    assert queued(ctx) == set() and (NAMESPACE, "j") in ctx.jobs  # held for the next sync all the same
    job_changed(ctx, "MODIFIED", job(active=1, ready=0))  # the Job controller made its pod
    assert queued(ctx) == {owner}
    ctx.queue._dirty.clear()
    job_changed(ctx, "MODIFIED", job(active=1, ready=1))  # a sync reads pods too: churn shows only here
    assert queued(ctx) == {owner}
    ctx.queue._dirty.clear()
    job_changed(ctx, "DELETED", job(active=1))
    assert queued(ctx) == {owner}
    ctx.queue._dirty.clear()
    job_changed(ctx, "ADDED", job())  # made again by the sync the deletion queued: that sync knows of it
    assert queued(ctx) == set()
    restarted = context()  # an operator that starts while a Job of an earlier one has finished
    finished = job(succeeded=1, conditions=[{"type": "Complete", "status": "True"}])
    job_changed(restarted, None, finished)  # listed before its owner: the owner's own listing decides
    assert queued(restarted) == set() and (NAMESPACE, "j") in restarted.jobs
    object_changed(restarted, DATASET, None, obj("Dataset", "d", observed=1))  # loading: not at rest
    assert queued(restarted) == {owner}
    restarted.queue._dirty.clear()
    job_changed(restarted, None, finished)  # a relist of the Jobs alone: the owner is known
    assert queued(restarted) == {owner}


def test_a_child_queues_its_owner_and_a_build_job_its_owner_in_the_tenant_namespace() -> None:
    ctx = context()
    labels = {**MANAGED_BY, KIND_LABEL: "Model", NAME_LABEL: "m", NAMESPACE_LABEL: NAMESPACE}
    build = {"kind": "Job", "metadata": {"name": "b", "namespace": DEV_CLUSTER.build_namespace, "labels": labels},
             "status": {"succeeded": 1}}
    job_changed(ctx, "MODIFIED", build)
    assert queued(ctx) == {("Model", NAMESPACE, "m")}
    assert ctx.jobs[DEV_CLUSTER.build_namespace, "b"]["status"]["succeeded"] == 1
    job_changed(ctx, "DELETED", build)
    assert (DEV_CLUSTER.build_namespace, "b") not in ctx.jobs
    ctx.queue._dirty.clear()
    child_changed(ctx, "MODIFIED", {"kind": "Deployment", "metadata": {"name": "x", "namespace": NAMESPACE,
                                                                      "labels": MANAGED_BY}})  # no owner labels
    assert queued(ctx) == set()


def test_an_object_at_rest_is_not_queued_when_listed_nor_resynced() -> None:
    """A Ready Dataset without a schedule is at rest (sync.at_rest): listed at a start or a relist, it is not
    queued, and the resync passes it by; with a schedule, or with a finalizer to add (`onDelete: Delete`), it is
    not at rest, and is queued."""
    ctx = context()
    loaded = {"image": "loader:1"}
    object_changed(ctx, DATASET, None, obj("Dataset", "d", observed=1, ready=True, reason="Loaded", spec=loaded))
    assert queued(ctx) == set() and ("Dataset", NAMESPACE, "d") in ctx.resting
    scheduled = {**loaded, "schedule": {"cron": "0 0 * * *"}}
    object_changed(ctx, DATASET, None, obj("Dataset", "s", observed=1, ready=True, reason="Loaded", spec=scheduled))
    kept = {**loaded, "onDelete": "Delete"}
    object_changed(ctx, DATASET, None, obj("Dataset", "k", observed=1, ready=True, reason="Loaded", spec=kept))
    assert queued(ctx) == {("Dataset", NAMESPACE, "s"), ("Dataset", NAMESPACE, "k")}
    assert ctx.known - ctx.resting == {("Dataset", NAMESPACE, "s"), ("Dataset", NAMESPACE, "k")}
    object_changed(ctx, DATASET, "MODIFIED", obj("Dataset", "d", generation=2, observed=1, ready=True,
                                                 reason="Loaded", spec=loaded))  # a spec change: no longer at rest
    assert ("Dataset", NAMESPACE, "d") in queued(ctx) and ("Dataset", NAMESPACE, "d") not in ctx.resting


def test_the_jobs_of_an_object_at_rest_do_not_queue_it() -> None:
    """A restart lists the Jobs too, and the Job controller (its TTL) deletes them: an owner at rest recorded its
    Job's outcome and applies no child, so neither queues it; its Job is still kept for when it leaves rest."""
    ctx = context()
    object_changed(ctx, DATASET, None, obj("Dataset", "d", observed=1, ready=True, reason="Loaded",
                                           spec={"image": "loader:1"}))
    labels = {**MANAGED_BY, KIND_LABEL: "Dataset", NAME_LABEL: "d"}
    done = {"kind": "Job", "metadata": {"name": "d-1", "namespace": NAMESPACE, "uid": "u1", "labels": labels},
            "spec": {}, "status": {"succeeded": 1}}
    job_changed(ctx, None, done)
    job_changed(ctx, "DELETED", done)
    assert queued(ctx) == set()
    object_changed(ctx, DATASET, "MODIFIED", obj("Dataset", "d", generation=2, observed=1, ready=True,
                                                 reason="Loaded", spec={"image": "loader:2"}))
    ctx.queue._dirty.clear()
    job_changed(ctx, None, done)
    assert queued(ctx) == {("Dataset", NAMESPACE, "d")} and (NAMESPACE, "d-1") in ctx.jobs
