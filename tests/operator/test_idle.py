"""Idle notebooks (spec.idle): warned, then suspended, after the timeout; a busy one never; the workspace stays; the
status stays within the CRD's schema; the activity sidecar against a Jupyter Server that answers as the real one."""

import asyncio
import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
import pytest
from aiohttp import web
from google.cloud import storage

from modelplane.activity import __main__ as sidecar
from modelplane.activity.report import ActivityReport
from modelplane.api.notebook import IDLE_SUSPENDED_ANNOTATION, NotebookSpec
from modelplane.cli.cluster import Cluster
from modelplane.cli.notebook import resume
from modelplane.operator import sync as operator_sync
from modelplane.operator.controllers import idle_mark_changed
from modelplane.operator.metrics import Metrics
from modelplane.reconcile.common import Outcome, RolloutState
from modelplane.reconcile.idle import IdleObserved
from modelplane.reconcile.notebook import NotebookObserved, reconcile_notebook
from modelplane.reconcile.notices import notices
from tests.support.http import serving
from tests.support.kube import DEV_CLUSTER, NAMESPACE, Operator, eventually, owner
from tests.support.objects import create, obj_of
from tests.support.pruning import pruned, status_schema

SPEC = NotebookSpec.model_validate({"idle": {"timeoutMinutes": 60, "warningMinutes": 10},
                                    "resources": {"gpu": {"type": "nvidia-l4"}}})
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
RUNNING = RolloutState(1, 1, 1)


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(last_minutes: float, reported_minutes: float, busy: bool = False) -> ActivityReport:
    return ActivityReport(reported_at=START + timedelta(minutes=reported_minutes), started=START,
                          last_activity=START + timedelta(minutes=last_minutes), busy=busy, kernels=1)


NOTHING = IdleObserved()


def sync(status: dict[str, Any], minutes: float, idle: IdleObserved = NOTHING) -> Outcome:
    return reconcile_notebook(owner("Notebook", "nb"), SPEC, status, DEV_CLUSTER,
                              NotebookObserved(pods=RUNNING, idle=idle), at(minutes))


def statefulset(outcome: Outcome) -> dict[str, Any]:
    (sts,) = [c for c in outcome.children if c["kind"] == "StatefulSet"]
    return sts


def reasons(before: dict[str, Any], after: dict[str, Any], minutes: float) -> list[str]:
    return [n.reason for n in notices(before, after, at(0), at(minutes))]


def run_idle(idle: IdleObserved) -> list[tuple[float, Outcome]]:
    """Syncs at the times the operator asks for (requeue_after), from the pod's first Ready, for three hours."""
    outcomes: list[tuple[float, Outcome]] = []
    status: dict[str, Any] = {}
    minutes = 0.0
    while minutes < 180:
        outcome = sync(status, minutes, idle)
        outcomes.append((minutes, outcome))
        if outcome.annotations or outcome.requeue_after is None:
            break
        status = {k: v for k, v in outcome.status.items() if v is not None}
        minutes += outcome.requeue_after / 60
    return outcomes


def test_an_idle_notebook_is_warned_then_suspended_and_keeps_its_workspace() -> None:
    # Jupyter's kernel last did something 5 minutes after the start; the sidecar keeps reporting it.
    outcomes = run_idle(IdleObserved(report=report(5, 0)))
    times = [minutes for minutes, _ in outcomes]
    assert times == [0, 55, 65]  # the clock starts at Ready; warned at 65 - 10; suspended at 5 + 60
    (_, first), (_, warned), (_, suspended) = outcomes
    assert first.status["idle"] == {"since": at(0), "lastActivity": at(5)} and first.requeue_after == 55 * 60
    assert warned.status["idle"]["suspendAt"] == at(65) and not warned.annotations
    assert statefulset(warned)["spec"]["replicas"] == 1
    assert reasons(first.status, warned.status, 55) == ["IdleWarning"]

    assert suspended.annotations == {IDLE_SUSPENDED_ANNOTATION: at(65)}
    assert statefulset(suspended)["spec"]["replicas"] == 0
    assert suspended.status["conditions"][0]["reason"] == "IdleSuspended" and suspended.status["pod"] is None
    assert "kubectl notebook nb" in suspended.status["conditions"][0]["message"]
    assert [n.reason for n in notices(warned.status, suspended.status, at(0), at(65))] == ["IdleSuspended"]
    # The workspace is the same read-write bucket mount, and the object says where it is.
    running_volumes, suspended_volumes = (statefulset(o)["spec"]["template"]["spec"]["volumes"]
                                          for o in (first, suspended))
    assert running_volumes == suspended_volumes
    assert suspended.status["workspace"] == f"gs://{DEV_CLUSTER.bucket}/ml/notebooks/nb/workspace/"


def test_the_suspension_is_counted() -> None:
    metrics = Metrics()
    outcomes = run_idle(IdleObserved(report=report(5, 0)))
    for (_, before), (minutes, after) in itertools.pairwise(outcomes):
        for notice in notices(before.status, after.status, at(0), at(minutes)):
            metrics.noticed("Notebook", notice)
    assert metrics.registry.get_sample_value("modelplane_notebook_culls_total") == 1.0


def test_once_marked_it_stays_suspended_until_the_mark_is_removed_then_counts_from_ready() -> None:
    marked = IdleObserved(suspended_at=at(65))
    held = sync({"idle": {"lastActivity": at(5), "suspendAt": at(65)}}, 300, marked)
    assert statefulset(held)["spec"]["replicas"] == 0 and held.requeue_after is None
    assert held.status["idle"] == {"lastActivity": at(5), "suspendedAt": at(65), "suspendAt": None}
    assert idle_mark_changed({"metadata": {"name": "nb", "annotations": {IDLE_SUSPENDED_ANNOTATION: at(65)}},
                              "status": {"idle": {"suspendedAt": at(65)}}}) == []
    # `kubectl notebook nb` removed the mark: the watch event alone (no new generation) queues the notebook.
    stored = {**held.status, "idle": {"lastActivity": at(5), "suspendedAt": at(65)}}
    assert idle_mark_changed({"metadata": {"name": "nb"}, "status": stored}) == [("Notebook", "nb")]
    starting = reconcile_notebook(owner("Notebook", "nb"), SPEC, stored, DEV_CLUSTER,
                                  NotebookObserved(pods=RolloutState(), idle=IdleObserved(report=report(5, 60))),
                                  at(300))
    assert statefulset(starting)["spec"]["replicas"] == 1 and not starting.annotations
    assert starting.status["idle"]["suspendedAt"] is None and "since" not in starting.status["idle"]
    # Ready again: the old report (idle since minute 5) does not suspend it; a full timeout starts now.
    ready = sync({**starting.status, "idle": {"lastActivity": at(5)}}, 302, IdleObserved(report=report(5, 60)))
    assert ready.status["idle"]["since"] == at(302) and ready.requeue_after == 50 * 60


@pytest.mark.parametrize("case", ["a kernel busy", "recent kernel or terminal activity",
                                  "a recent kubectl notebook sync"])
def test_a_busy_notebook_is_not_suspended(case: str) -> None:
    status: dict[str, Any] = {}
    for minutes in range(0, 240, 5):  # the operator syncs more often than it asks to: nothing changes that
        if case == "a kernel busy":  # busy as of each report (a silent computation moves no last_activity)
            idle = IdleObserved(report=report(5, minutes, busy=True))
        elif case == "recent kernel or terminal activity":
            idle = IdleObserved(report=report(max(minutes - 20, 0), minutes))
        else:
            idle = IdleObserved(report=report(5, minutes), heartbeat=START + timedelta(minutes=minutes - 1))
        outcome = sync(status, minutes, idle)
        assert not outcome.annotations and statefulset(outcome)["spec"]["replicas"] == 1, (case, minutes)
        assert "IdleWarning" not in reasons(status, outcome.status, minutes), (case, minutes)
        status = {k: v for k, v in outcome.status.items() if v is not None}


def test_activity_after_the_warning_lifts_it() -> None:
    warned = sync({"idle": {"since": at(0), "lastActivity": at(5)}}, 56, IdleObserved(report=report(5, 55)))
    assert warned.status["idle"]["suspendAt"] == at(66)  # warned late: still the full ten minutes
    back = sync(warned.status, 60, IdleObserved(report=report(59, 60)))
    assert back.status["idle"]["suspendAt"] is None and not back.annotations
    assert back.requeue_after == 49 * 60


def test_a_pod_not_ready_yet_is_not_idle() -> None:
    waiting = reconcile_notebook(owner("Notebook", "nb"), SPEC, {}, DEV_CLUSTER,
                                 NotebookObserved(pods=RolloutState(1, 0, 0)), at(500))
    assert waiting.status["idle"] == {} and waiting.requeue_after is None and not waiting.annotations


def test_the_sidecar_is_there_only_when_idleness_is_watched() -> None:
    watched = statefulset(sync({}, 0))["spec"]["template"]["spec"]
    activity = next(c for c in watched["containers"] if c["name"] == "activity")
    assert activity["image"] == DEV_CLUSTER.runtime_image and activity["args"] == ["-m", "modelplane.activity"]
    assert activity["env"] == [{"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "notebook-nb-token", "key": "token"}}}]
    mounts = {v["name"]: v["csi"]["volumeAttributes"]["mountOptions"] for v in watched["volumes"] if "csi" in v}
    assert "only-dir=ml/notebooks/nb/activity" in mounts["activity"]  # inside the tenant's prefix, not the workspace
    main = next(c for c in watched["containers"] if c["name"] == "main")
    assert "activity" not in {m["name"] for m in main["volumeMounts"]}
    plain = NotebookSpec.model_validate({})
    unwatched = reconcile_notebook(owner("Notebook", "nb"), plain, {}, DEV_CLUSTER,
                                   NotebookObserved(pods=RUNNING), at(0))
    assert [c["name"] for c in statefulset(unwatched)["spec"]["template"]["spec"]["containers"]] == ["main"]
    assert "idle" not in unwatched.status and "activity" not in unwatched.status


def test_idle_statuses_stay_within_the_crd_schema() -> None:
    schema = status_schema("notebooks")
    outcomes = [o for _, o in run_idle(IdleObserved(report=report(5, 0)))]
    for outcome in outcomes:
        assert pruned(schema, {k: v for k, v in outcome.status.items() if v is not None}) == []
    held = sync(outcomes[-1].status, 70, IdleObserved(suspended_at=at(65)))
    assert pruned(schema, held.status) == []


# --- the activity sidecar against a Jupyter Server ------------------------------------------------------------------

TOKEN = "t0ken"


def jupyter(kernels: list[dict[str, Any]], terminals: list[dict[str, Any]] | None,
            seen: list[str]) -> web.Application:
    """The three answers as Jupyter Server gives them: /api/status (services/api/handlers.py APIStatusHandler:
    started, last_activity, kernels, connections, sorted keys), /api/kernels (services/kernels/kernelmanager.py
    kernel_model: id, name, last_activity, execution_state, connections), /api/terminals (jupyter_server_terminals
    TerminalManager.get_terminal_model: name, last_activity; absent when terminals are off). Times as its
    _tz.isoformat writes them (`...Z`, microseconds). A request without the token is a 403, as Jupyter's is."""
    def authorized(request: web.Request) -> None:
        seen.append(request.path_qs)
        if request.headers.get("Authorization") != f"token {TOKEN}":
            raise web.HTTPForbidden()

    async def status(request: web.Request) -> web.Response:
        authorized(request)
        return web.json_response({"connections": sum(k["connections"] for k in kernels),
                                  "kernels": len(kernels), "last_activity": "2026-11-24T11:59:00.000000Z",
                                  "started": "2026-11-24T10:00:00.123456Z"})

    async def list_kernels(request: web.Request) -> web.Response:
        authorized(request)
        return web.json_response(kernels)

    async def list_terminals(request: web.Request) -> web.Response:
        authorized(request)
        return web.json_response(terminals)

    app = web.Application()
    app.router.add_get("/api/status", status)
    app.router.add_get("/api/kernels", list_kernels)
    if terminals is not None:
        app.router.add_get("/api/terminals", list_terminals)
    return app


def kernel(state: str, last: str) -> dict[str, Any]:
    return {"id": "6f0c", "name": "python3", "last_activity": last, "execution_state": state, "connections": 1}


@pytest.mark.parametrize(("kernels", "terminals", "last", "busy"), [
    ([kernel("idle", "2026-11-24T10:30:00.000001Z")], [{"name": "1", "last_activity": "2026-11-24T10:45:00.5Z"}],
     "2026-11-24T10:45:00.500000Z", False),
    ([kernel("busy", "2026-11-24T10:05:00.000000Z"), kernel("idle", "2026-11-24T10:20:00.000000Z")], None,
     "2026-11-24T10:20:00Z", True),
    ([kernel("dead", "2026-11-24T10:05:00.000000Z")], [], "2026-11-24T10:05:00Z", False),
    ([], [], "2026-11-24T10:00:00.123456Z", False),  # nothing ever ran: idle since the server started
], ids=["terminal-newest", "busy-kernel-terminals-off", "dead-kernel", "no-kernels"])
async def test_the_sidecar_reports_kernels_and_terminals_not_api_polls(
        tmp_path: Path, kernels: list[dict[str, Any]], terminals: list[dict[str, Any]] | None, last: str,
        busy: bool) -> None:
    seen: list[str] = []
    stop = threading.Event()
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    async with serving(jupyter(kernels, terminals, seen)) as base:
        polling = asyncio.create_task(asyncio.to_thread(sidecar.poll, base, TOKEN, tmp_path, stop, 0.05, lambda: now))
        await asyncio.sleep(0.3)
        stop.set()
        await polling
    written = ActivityReport.model_validate(json.loads((tmp_path / "jupyter.json").read_text()))
    assert written.last_activity == datetime.fromisoformat(last) and written.busy is busy
    assert written.reported_at == now and written.kernels == len(kernels)
    # Not the status's last_activity (11:59, an API poll), and no poll of the sidecar's counts as activity.
    assert seen and all(path.endswith("?no_track_activity=1") for path in seen)


async def test_the_sidecar_writes_nothing_without_jupyters_answer(tmp_path: Path) -> None:
    seen: list[str] = []
    stop = threading.Event()
    async with serving(jupyter([], [], seen)) as base:
        polling = asyncio.create_task(asyncio.to_thread(sidecar.poll, base, "wrong", tmp_path, stop, 0.05))
        await asyncio.sleep(0.2)
        stop.set()
        await polling
    assert seen and not (tmp_path / "jupyter.json").exists()


# --- `kubectl notebook NAME` resumes it -------------------------------------------------------------------------------

async def test_kubectl_notebook_resumes_a_notebook_suspended_for_idleness(
        k8s: kmock.KubernetesEmulator, kubeconfig: Path, bucket: storage.Bucket) -> None:
    await create(k8s, {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Notebook",
                       "metadata": {"name": "nb", "annotations": {IDLE_SUSPENDED_ANNOTATION: at(65)}},
                       "spec": {"idle": {"timeoutMinutes": 60}}})
    response = await k8s.patch(f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/notebooks/nb/status", json={
        "status": {"activity": f"gs://{bucket.name}/ml/notebooks/nb/activity/", "idle": {"suspendedAt": at(65)}}})
    assert response.status == 200
    cluster = Cluster.from_kubeconfig(str(kubeconfig), None, None)
    logged: list[str] = []
    await asyncio.to_thread(resume, cluster, "nb", bucket.client, logged.append)
    assert IDLE_SUSPENDED_ANNOTATION not in (obj_of(k8s, "Notebook", "nb")["metadata"].get("annotations") or {})
    heartbeat = json.loads(bucket.blob("ml/notebooks/nb/activity/sync.json").download_as_bytes())
    assert datetime.fromisoformat(heartbeat["time"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert logged == [f"notebook nb was suspended for idleness at {at(65)}: resuming it"]


# --- the operator, end to end on the emulator -------------------------------------------------------------------------

async def test_the_operator_suspends_an_idle_notebook_after_its_timeout_and_not_a_busy_one(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two notebooks, one whose sidecar reports a busy kernel and one with nothing going on. The operator's clock is
    moved on and the operator restarted (it lists and syncs every object again, as after any restart): at 55
    minutes the idle one is warned, at 66 it is suspended and keeps its workspace; the busy one runs on."""
    clock = {"minutes": 0.0}
    monkeypatch.setattr(operator_sync, "now", lambda: at(clock["minutes"]))

    def idle_status(name: str) -> dict[str, Any]:
        return dict(obj_of(k8s, "Notebook", name)["status"].get("idle") or {})

    for name in ("idle", "busy"):
        await create(k8s, {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Notebook", "metadata": {"name": name},
                           "spec": {"idle": {"timeoutMinutes": 60, "warningMinutes": 10}}})
        await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, name])  # noqa: B023 (awaited here)
        response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/{name}/status",
                                   json={"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
        assert response.status == 200
        await eventually(lambda: idle_status(name).get("since") == at(0))  # noqa: B023 (awaited here)

    def busy_kernel_at(minutes: float) -> None:  # what the sidecar writes through its mount of the activity prefix
        bucket.blob(f"{NAMESPACE}/notebooks/busy/activity/jupyter.json").upload_from_string(
            report(0, minutes, busy=True).model_dump_json(by_alias=True))

    def events(reason: str) -> list[str]:
        return [r.data["involvedObject"]["name"] for r in k8s["post v1/events"] if r.data["reason"] == reason]

    for minutes in (55, 66):
        clock["minutes"] = minutes
        busy_kernel_at(minutes)
        await operator.restart()
        if minutes == 55:
            # a first warning gives the whole warningMinutes, even past the timeout
            await eventually(lambda: idle_status("idle").get("suspendAt") == at(65))
            await eventually(lambda: events("IdleWarning") == ["idle"])
    await eventually(lambda: IDLE_SUSPENDED_ANNOTATION in (obj_of(k8s, "Notebook", "idle")["metadata"].get(
        "annotations") or {}))
    await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, "idle"]["spec"]["replicas"] == 0)
    await eventually(lambda: idle_status("idle").get("suspendedAt") == at(66))
    await eventually(lambda: events("IdleSuspended") == ["idle"])
    workspace = {v["name"]: v for v in k8s.objects["apps/v1/statefulsets", NAMESPACE, "idle"]["spec"]["template"][
        "spec"]["volumes"]}["workspace"]
    assert workspace["csi"]["readOnly"] is False  # still mounted, so nothing in it is lost
    await eventually(lambda: idle_status("busy").get("lastActivity") == at(66))  # synced at 66 too
    assert not {"suspendAt", "suspendedAt"} & set(idle_status("busy"))
    assert k8s.objects["apps/v1/statefulsets", NAMESPACE, "busy"]["spec"]["replicas"] == 1
    assert "busy" not in events("IdleWarning") + events("IdleSuspended")
