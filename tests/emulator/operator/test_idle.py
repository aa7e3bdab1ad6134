"""Idle notebooks end to end: the activity sidecar against a Jupyter Server that answers as the real one,
`kubectl notebook NAME` resuming a suspended notebook, and the operator suspending an idle notebook and not a
busy one."""
import asyncio
import dataclasses
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
import pytest
from aiohttp import web
from google.cloud import storage
from google.oauth2 import service_account

from modelplane.activity import __main__ as sidecar
from modelplane.activity.report import ActivityReport
from modelplane.api.notebook import IDLE_SUSPENDED_ANNOTATION
from modelplane.cli.cluster import Cluster
from modelplane.cli.notebook import resume
from modelplane.operator import sync as operator_sync
from modelplane.operator.context import Context
from modelplane.storage import ArtifactStore, UploadSigner
from tests.support.facts import DEV_CLUSTER, NAMESPACE
from tests.support.http import serving
from tests.support.kube import Operator, eventually, kube_for
from tests.support.objects import create, obj_of

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(last_minutes: float, reported_minutes: float, busy: bool = False) -> ActivityReport:
    return ActivityReport(reported_at=START + timedelta(minutes=reported_minutes), started=START,
                          last_activity=START + timedelta(minutes=last_minutes), busy=busy, kernels=1)
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


async def test_a_notebook_sync_reads_the_notebook_once(k8s: kmock.KubernetesEmulator, bucket: storage.Bucket,
                                                       signing_credentials: service_account.Credentials) -> None:
    """The idle-suspension mark is read from the body the sync read, not with a second GET of the Notebook."""
    await create(k8s, {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Notebook", "metadata": {"name": "nb"},
                       "spec": {"idle": {"timeoutMinutes": 60}}})
    ctx = Context(kube=kube_for(k8s), cluster=dataclasses.replace(DEV_CLUSTER, bucket=bucket.name),
                  store=ArtifactStore(bucket.client, bucket.name), signer=UploadSigner(bucket, signing_credentials))
    before = len(list(k8s))
    await operator_sync.sync(ctx, ("Notebook", NAMESPACE, "nb"), logging.getLogger("test"))
    await ctx.kube.close()
    reads = [r for r in list(k8s)[before:] if r.method.name == "GET"
             and r.url.path == f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/notebooks/nb"]
    assert len(reads) == 1 and obj_of(k8s, "Notebook", "nb")["status"]["idle"] == {}
