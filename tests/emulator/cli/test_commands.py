"""The plugins against the Kubernetes emulator, the real operator (in-process) and fake-gcs-server.

They connect through a kubeconfig as a user's would, run `kubectl port-forward` from PATH (a fake that says what
kubectl says), and are interrupted with a real SIGINT where Ctrl-C is the point.
"""
import asyncio
import email.message
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import kmock
import pytest
import yaml
from google.cloud import storage

from modelplane.cli import applybuild, notebook
from modelplane.cli import upload as upload_module
from modelplane.cli.errors import Exit
from modelplane.cli.pack import pack
from modelplane.deploy import TENANT_LABEL
from modelplane.names import BUILD_NAMESPACE
from tests.support.cli import clean, context_dir, model_manifest, use_kubeconfig
from tests.support.emulator import ApiServerEmulator
from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import finish_job, obj_of, ready


def kubeconfig_for(path: Path, current: str, contexts: dict[str, tuple[str, str | None]]) -> Path:
    """A kubeconfig whose contexts are `name: (server, namespace or None)`, each with its own cluster entry."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": name, "cluster": {"server": server}} for name, (server, _) in contexts.items()],
        "users": [{"name": "u", "user": {"token": "test"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "u", **({"namespace": ns} if ns else {})}}
                     for name, (_, ns) in contexts.items()]}))
    return path


FAKE_KUBECTL = """
import json, os, signal, sys, time
def note(entry):
    with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\\n")
note(sys.argv[1:])
if os.environ.get("FAKE_KUBECTL_FAILS"):
    print("error: unable to listen on port 8888: address already in use", file=sys.stderr)
    sys.exit(1)
signal.signal(signal.SIGTERM, lambda *_: (note("terminated"), sys.exit(0)))
print("Forwarding from 127.0.0.1:8888 -> 8888", flush=True)
while True:
    time.sleep(1)
"""


class FakeKubectl:
    """`kubectl` on PATH: `kubectl port-forward` as far as the plugin sees it (FAKE_KUBECTL_FAILS: it cannot listen)."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (directory / "bin").mkdir()
        script = directory / "bin" / "kubectl"
        script.write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
        script.chmod(0o755)
        self.log = directory / "kubectl.log"
        monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_KUBECTL_LOG", str(self.log))

    def calls(self) -> list[Any]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    return FakeKubectl(tmp_path, monkeypatch)


def plugin(name: str, *args: str) -> "subprocess.Popen[str]":
    """A plugin as a user runs it: a process of its own (Ctrl-C is a real SIGINT), with the test's environment.

    Its SIGINT is at the default, as a terminal's foreground command's is, however this run was started: a
    non-interactive shell starts a background job (`pytest &`, a CI runner's) with SIGINT ignored, an ignored signal
    stays ignored across fork and exec (POSIX), and Python then installs no KeyboardInterrupt handler, so the plugin
    would never see Ctrl-C. A caught signal, by contrast, is reset to the default at exec."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen([sys.executable, "-m", f"modelplane.cli.{name}", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, before)


async def make_ready(k8s: kmock.KubernetesEmulator, name: str) -> None:
    """Play the StatefulSet controller: the notebook's pod is up and ready."""
    await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, name]["spec"]["replicas"] == 1, 10)
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/{name}/status",
                               json={"status": {"replicas": 1, "readyReplicas": 1}})
    assert response.status == 200


async def suspended(k8s: kmock.KubernetesEmulator, name: str) -> None:
    assert obj_of(k8s, "Notebook", name)["spec"]["suspend"] is True
    await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, name]["spec"]["replicas"] == 0)
EXPIRE_NEXT: list[bool] = []  # put True here to make the next upload fail as an expired URL would


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every upload the CLI makes (still performed for real)."""
    made: list[str] = []
    real = upload_module.put
    expire_next = EXPIRE_NEXT

    def counting(url: str, body: IO[bytes], size: int, md5_hex: str,
                 on_bytes: Callable[[int], None] = lambda _: None) -> None:
        if expire_next:
            expire_next.pop()
            raise urllib.error.HTTPError(url, 400, "ExpiredToken", email.message.Message(), None)
        made.append(md5_hex)
        real(url, body, size, md5_hex, on_bytes)

    monkeypatch.setattr(upload_module, "put", counting)
    return made


async def test_applybuild_uploads_builds_and_skips_an_unchanged_context(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path,
        puts: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    manifest = model_manifest(tmp_path)
    source = context_dir(tmp_path / "src")
    code = await asyncio.to_thread(applybuild.main, ["-f", str(manifest), str(source)])
    assert code == Exit.OK and "model.modelplane.dev/tuned applied" in capsys.readouterr().out
    md5 = pack(source).md5
    assert puts == [md5]
    stored = bucket.get_blob(f"uploads/ml/models/tuned/{md5}.tar.gz")
    assert stored is not None and hashlib.md5(stored.download_as_bytes()).hexdigest() == md5
    await eventually(lambda: ready(k8s, "Model", "tuned")["reason"] == "Building", timeout=10)

    # The same directory again: the bucket already holds it, so nothing is sent.
    code = await asyncio.to_thread(applybuild.main, ["-q", "-f", str(manifest), str(source)])
    assert code == Exit.OK and puts == [md5]
    assert "already uploaded" not in capsys.readouterr().err  # --quiet keeps the progress out of the way


async def test_an_expired_upload_url_is_renewed_once(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                     bucket: storage.Bucket, tmp_path: Path, puts: list[str]) -> None:
    EXPIRE_NEXT.append(True)
    code = await asyncio.to_thread(applybuild.main, ["-q", "-f", str(model_manifest(tmp_path)),
                                                     str(context_dir(tmp_path / "s"))])
    assert code == Exit.OK and len(puts) == 1 and not EXPIRE_NEXT
    assert obj_of(k8s, "Model", "tuned")["status"]["buildUpload"]["stored"] is False  # answered before the upload
    await eventually(lambda: ready(k8s, "Model", "tuned")["reason"] == "Building", timeout=10)


async def test_a_gpu_the_cluster_lacks_is_refused_before_any_upload(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path, puts: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest = model_manifest(tmp_path, resources={"gpu": {"type": "nvidia-h100-80gb"}})
    code = await asyncio.to_thread(applybuild.main, ["-f", str(manifest), str(context_dir(tmp_path / "s"))])
    assert code == Exit.REFUSED and puts == []
    assert "GPUNotOffered" in clean(capsys.readouterr().err)


async def build_job(k8s: kmock.KubernetesEmulator) -> str:
    """The build Job's name, once the operator has created it (the context is uploaded)."""
    await eventually(lambda: any("build" in r.data["metadata"]["name"] for r in k8s["post batch/v1/jobs"]), 20)
    return str(next(r.data["metadata"]["name"] for r in k8s["post batch/v1/jobs"]
                    if "build" in r.data["metadata"]["name"]))


async def test_applybuild_wait_reports_a_failed_build(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                      bucket: storage.Bucket, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    command = asyncio.create_task(asyncio.to_thread(
        applybuild.main, ["--wait", "-f", str(model_manifest(tmp_path)), str(context_dir(tmp_path / "src"))]))
    await finish_job(k8s, await build_job(k8s), ok=False, namespace=BUILD_NAMESPACE,
                     message="ERROR: failed to solve: process \"pip install nope\"")
    assert await asyncio.wait_for(command, 15) == Exit.FAILED
    assert "BuildFailed: ERROR: failed to solve" in clean(capsys.readouterr().err)


async def test_ctrl_c_in_applybuild_is_exit_130_without_a_traceback(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path) -> None:
    process = plugin("applybuild", "--wait", "-f", str(model_manifest(tmp_path)), str(context_dir(tmp_path / "s")))
    await build_job(k8s)  # uploaded and building: the command waits for Ready
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.to_thread(process.communicate, timeout=20)
    assert process.returncode == Exit.INTERRUPTED
    assert clean(err).strip().endswith("interrupted")


async def test_an_unknown_context_is_an_error_naming_the_known_ones(
        k8s: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_kubeconfig(monkeypatch, kubeconfig_for(tmp_path / "config", "prod", {
        "dev": (str(k8s.url), NAMESPACE), "prod": (str(k8s.url), NAMESPACE)}))
    code = await asyncio.to_thread(notebook.main, ["--context", "prdo", "nb"])
    assert code == Exit.NO_CLUSTER and list(k8s) == []  # not one request: no fallback to the current context
    err = clean(capsys.readouterr().err)
    assert "--context 'prdo' is not a context of" in err and "known contexts: dev, prod" in err


async def test_the_first_kubeconfig_file_with_a_current_context_decides(
        k8s: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """KUBECONFIG=a:b, each with a current-context: kubectl uses a's (the kubernetes client alone takes b's)."""
    first = kubeconfig_for(tmp_path / "a", "here", {"here": (str(k8s.url), NAMESPACE)})
    second = kubeconfig_for(tmp_path / "b", "nowhere", {"nowhere": ("http://127.0.0.1:9", NAMESPACE)})
    use_kubeconfig(monkeypatch, first, second)
    code = await asyncio.to_thread(notebook.main, ["nb"])
    assert code == Exit.USAGE and "no notebook 'nb' here" in clean(capsys.readouterr().err)  # asked `here`


async def test_a_defaulted_namespace_that_is_no_tenants_is_named(
        k8s: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """No -n and no namespace in the context: `default`, as kubectl; the operator watches only tenants', so say so."""
    use_kubeconfig(monkeypatch, kubeconfig_for(tmp_path / "config", "bare", {"bare": (str(k8s.url), None)}))
    assert await asyncio.to_thread(notebook.main, ["nb"]) == Exit.USAGE  # no notebook nb in `default`
    err = clean(capsys.readouterr().err)
    assert "namespace 'default', which is no modelplane tenant's" in err and "give -n TENANT" in err
    assert any("/namespaces/default/notebooks" in r.url.path for r in list(k8s))

    assert await asyncio.to_thread(notebook.main, ["-n", NAMESPACE, "nb"]) == Exit.USAGE
    assert "warning" not in capsys.readouterr().err  # named: no warning
    # (kmock serves no single namespace: answer as the API server would for a tenant's `default`)
    k8s["get /api/v1/namespaces/default"] << {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "default", "labels": {TENANT_LABEL: "default"}}}
    assert await asyncio.to_thread(notebook.main, ["nb"]) == Exit.USAGE
    assert "warning" not in capsys.readouterr().err  # a tenant's namespace after all


async def test_errors_name_the_kind_and_the_call(k8s: kmock.KubernetesEmulator, kubeconfig: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(k8s, ApiServerEmulator)
    k8s.fail("GET", r"/models$", 403, message='models.modelplane.dev is forbidden: User "ann" cannot list')
    code = await asyncio.to_thread(applybuild.main, ["-f", str(model_manifest(tmp_path)),
                                                     str(context_dir(tmp_path / "src"))])
    err = clean(capsys.readouterr().err)
    assert code == Exit.NO_CLUSTER and "notebooks" not in err
    assert "listing models (context kmock, namespace ml): 403 Forbidden: models.modelplane.dev is forbidden" in err


async def test_a_cluster_without_the_crds_is_named(kmock: kmock.KubernetesEmulator, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    kmock.resources.load_bundled()  # an API server without modelplane's CRDs
    use_kubeconfig(monkeypatch, kubeconfig_for(tmp_path / "config", "c", {"c": (str(kmock.url), NAMESPACE)}))
    code = await asyncio.wait_for(asyncio.to_thread(notebook.main, ["-d", str(tmp_path)]), 20)
    assert code == Exit.NO_CRDS
    assert "no modelplane CRDs" in clean(capsys.readouterr().err)


async def test_missing_google_credentials_stop_before_anything_starts(
        k8s: kmock.KubernetesEmulator, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-credentials.json"))
    monkeypatch.setattr(notebook, "READY_TIMEOUT", 3.0)  # (what the command did before: wait, then fail the sync)
    (tmp_path / "nb").mkdir()
    code = await asyncio.wait_for(asyncio.to_thread(notebook.main, ["-d", str(tmp_path / "nb")]), 20)
    assert code == Exit.NO_CLUSTER and not k8s["post modelplane.dev/v1alpha1/notebooks"]  # no GPU taken
    assert "no Google credentials for the workspace sync" in clean(capsys.readouterr().err)


async def test_a_notebook_held_back_by_quota_exits_with_the_reason(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nb").mkdir()
    command = asyncio.create_task(asyncio.to_thread(notebook.main, ["-d", str(tmp_path / "nb")]))
    await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, "nb"]["spec"]["replicas"] == 1, 10)
    # Play the StatefulSet controller, refused by the namespace's GPU quota.
    response = await k8s.post(f"/api/v1/namespaces/{NAMESPACE}/events", json={
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "nb.quota", "namespace": NAMESPACE},
        "involvedObject": {"kind": "StatefulSet", "name": "nb", "namespace": NAMESPACE}, "reason": "FailedCreate",
        "message": 'create Pod nb-0 in StatefulSet nb failed error: pods "nb-0" is forbidden: exceeded quota: '
                   "modelplane-gpus, requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, "
                   "limited: requests.nvidia.com/gpu=4", "type": "Warning"})
    assert response.status == 200, await response.text()
    # The operator learns of it at its next look (here: a nudge through the StatefulSet's status).
    await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/nb/status", json={"status": {"replicas": 0}})
    assert await asyncio.wait_for(command, 15) == Exit.REFUSED
    assert "QuotaExceeded" in clean(capsys.readouterr().err)
    await suspended(k8s, "nb")  # else it would take the GPU when the quota frees, with nobody there to use it


async def test_ctrl_c_before_ready_suspends_the_notebook(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path) -> None:
    (tmp_path / "nb").mkdir()
    process = plugin("notebook", "-d", str(tmp_path / "nb"))
    await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, "nb"]["spec"]["replicas"] == 1, 20)
    process.send_signal(signal.SIGINT)  # while it waits for Ready: the pod is being scheduled onto a GPU node
    _, err = await asyncio.to_thread(process.communicate, timeout=20)
    assert process.returncode == Exit.INTERRUPTED
    assert "notebook nb suspended" in clean(err)
    await suspended(k8s, "nb")


async def test_a_port_forward_that_cannot_listen_is_an_error_not_a_url(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path,
        kubectl: FakeKubectl, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FAKE_KUBECTL_FAILS", "1")
    (tmp_path / "nb").mkdir()
    command = asyncio.create_task(asyncio.to_thread(notebook.main, ["-d", str(tmp_path / "nb")],
                                                    keep_running=lambda: False))
    await make_ready(k8s, "nb")
    assert await asyncio.wait_for(command, 15) == Exit.FAILED
    printed = capsys.readouterr()
    assert printed.out == ""  # no URL that leads nowhere
    assert "kubectl port-forward exited (1): error: unable to listen on port 8888" in clean(printed.err)
    await suspended(k8s, "nb")


async def test_notebook_syncs_both_ways_and_suspends_on_exit(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, kubeconfig: Path, tmp_path: Path,
        kubectl: FakeKubectl, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "my-repo"
    work.mkdir()
    (work / "analysis.py").write_text("import torch")
    stop = threading.Event()
    command = asyncio.create_task(asyncio.to_thread(
        notebook.main, ["-q", "--kubeconfig", str(kubeconfig), "-d", str(work), "--sync-interval", "0.1"],
        keep_running=lambda: not stop.is_set()))
    await make_ready(k8s, "my-repo")
    # port-forward reaches the very cluster and namespace the plugin used.
    await eventually(lambda: kubectl.calls()[:1] == [["--kubeconfig", str(kubeconfig), "--context", "kmock",
                                                      "--namespace", NAMESPACE, "port-forward", "pod/my-repo-0",
                                                      "8888:8888"]], 10)
    prefix = "ml/notebooks/my-repo/workspace/"
    await eventually(lambda: bucket.get_blob(prefix + "analysis.py") is not None, 10)  # local -> notebook
    bucket.blob(prefix + "../../escape.py").upload_from_string(b"planted")  # anyone with the workload identity
    bucket.blob(prefix + "out/plot.png").upload_from_string(b"png")  # the notebook writes a result
    await eventually(lambda: (work / "out" / "plot.png").is_file(), 10)  # notebook -> local
    (work / "analysis.py").unlink()
    await eventually(lambda: bucket.get_blob(prefix + "analysis.py") is None, 10)  # deletions too
    stop.set()
    assert await asyncio.wait_for(command, 10) == Exit.OK
    assert kubectl.calls()[-1] == "terminated"
    await suspended(k8s, "my-repo")
    token = k8s.objects["v1/secrets", NAMESPACE, "notebook-my-repo-token"]["stringData"]["token"]
    printed = capsys.readouterr()
    assert printed.out.strip() == "http://localhost:8888/"  # --quiet: just the URL, and no token unless asked
    assert token not in printed.out + printed.err
    assert printed.err.count("warning: not synced: '../../escape.py'") == 1  # named once, not at every sync
    assert not (tmp_path.parent / "escape.py").exists() and not (tmp_path / "escape.py").exists()

    # `kubectl notebook NAME` reopens it with the same token; --no-suspend leaves it running on exit, and says so.
    code = await asyncio.to_thread(notebook.main, ["-q", "my-repo", "--no-suspend", "--show-token"],
                                   keep_running=lambda: False)
    assert code == Exit.OK and obj_of(k8s, "Notebook", "my-repo")["spec"]["suspend"] is False
    printed = capsys.readouterr()
    assert printed.out.strip() == f"http://localhost:8888/?token={token}"  # --show-token: asked for
    assert "notebook my-repo left running (--no-suspend)" in printed.err
    assert "kubectl --context kmock --namespace ml patch notebook my-repo" in printed.err
