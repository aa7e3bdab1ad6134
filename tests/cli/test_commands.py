"""The plugins against the Kubernetes emulator, the real operator (in-process) and fake-gcs-server."""

import asyncio
import email.message
import hashlib
import threading
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from google.cloud import storage

from modelplane.cli import applybuild, notebook
from modelplane.cli import upload as upload_module
from modelplane.cli.cluster import Cluster
from modelplane.cli.errors import Exit
from modelplane.cli.pack import pack
from modelplane.names import BUILD_NAMESPACE
from tests.operator.test_operator import finish_job, obj_of, ready
from tests.support.kube import NAMESPACE, Operator, client_for, eventually

MODEL = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Model", "metadata": {"name": "tuned"},
         "spec": {"params": {"epochs": 1}}}


def context_dir(root: Path, script: str = "print('train')") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY train.py /\n")
    (root / "train.py").write_text(script)
    (root / ".dockerignore").write_text("*.ckpt\n")
    (root / "big.ckpt").write_text("not sent")
    return root


class EmulatedCluster(Cluster):
    """kmock fills no server fields: add what the API server would (uid, generation++ on a spec change)."""

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = {**obj["metadata"], "uid": f"uid-cli-{obj['metadata']['name']}", "generation": 1,
                "resourceVersion": "1"}
        return super().apply({**obj, "metadata": meta})

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        current = self.get(kind, name) or {"metadata": {}}
        generation = int(current["metadata"].get("generation") or 1) + 1
        self.custom.patch_namespaced_custom_object("modelplane.dev", "v1alpha1", self.namespace,
                                                   f"{kind.lower()}s", name, {"metadata": {"generation": generation}})
        return super().patch_spec(kind, name, spec)


def cluster_of(k8s: kmock.KubernetesEmulator) -> Cluster:
    return EmulatedCluster(client_for(k8s), NAMESPACE)


EXPIRE_NEXT: list[bool] = []  # put True here to make the next upload fail as an expired URL would


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every upload the CLI makes (still performed for real)."""
    made: list[str] = []
    real = upload_module.put
    expire_next = EXPIRE_NEXT

    def counting(url: str, data: bytes, md5_hex: str, on_bytes: Callable[[int], None] = lambda _: None) -> None:
        if expire_next:
            expire_next.pop()
            raise urllib.error.HTTPError(url, 400, "ExpiredToken", email.message.Message(), None)
        made.append(md5_hex)
        real(url, data, md5_hex, on_bytes)

    monkeypatch.setattr(upload_module, "put", counting)
    return made


async def test_applybuild_uploads_builds_and_skips_an_unchanged_context(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path,
        puts: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "model.yaml"
    manifest.write_text(yaml.safe_dump(MODEL))
    source = context_dir(tmp_path / "src")
    code = await asyncio.to_thread(applybuild.main, ["-f", str(manifest), str(source)], cluster_of(k8s))
    assert code == Exit.OK and "model.modelplane.dev/tuned applied" in capsys.readouterr().out
    md5 = pack(source).md5
    assert puts == [md5]
    stored = bucket.get_blob(f"uploads/ml/models/tuned/{md5}.tar.gz")
    assert stored is not None and hashlib.md5(stored.download_as_bytes()).hexdigest() == md5
    await eventually(lambda: ready(k8s, "Model", "tuned")["reason"] == "Building", timeout=10)

    # The same directory again: the bucket already holds it, so nothing is sent.
    code = await asyncio.to_thread(applybuild.main, ["-q", "-f", str(manifest), str(source)], cluster_of(k8s))
    assert code == Exit.OK and puts == [md5]
    assert "already uploaded" not in capsys.readouterr().err  # --quiet keeps the progress out of the way


async def test_an_expired_upload_url_is_renewed_once(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                     bucket: storage.Bucket, tmp_path: Path, puts: list[str]) -> None:
    manifest = tmp_path / "model.yaml"
    manifest.write_text(yaml.safe_dump(MODEL))
    EXPIRE_NEXT.append(True)
    code = await asyncio.to_thread(applybuild.main, ["-q", "-f", str(manifest), str(context_dir(tmp_path / "s"))],
                                   cluster_of(k8s))
    assert code == Exit.OK and len(puts) == 1 and not EXPIRE_NEXT
    assert obj_of(k8s, "Model", "tuned")["status"]["buildUpload"]["stored"] is False  # answered before the upload
    await eventually(lambda: ready(k8s, "Model", "tuned")["reason"] == "Building", timeout=10)


async def test_a_gpu_the_cluster_lacks_is_refused_before_any_upload(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path, puts: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "model.yaml"
    manifest.write_text(yaml.safe_dump({**MODEL, "spec": {"resources": {"gpu": {"type": "nvidia-h100-80gb"}}}}))
    code = await asyncio.to_thread(applybuild.main, ["-f", str(manifest), str(context_dir(tmp_path / "s"))],
                                   cluster_of(k8s))
    assert code == Exit.REFUSED and puts == []
    assert "GPUNotOffered" in capsys.readouterr().err


async def test_applybuild_wait_reports_a_failed_build(k8s: kmock.KubernetesEmulator, operator: Operator,
                                                      bucket: storage.Bucket, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "model.yaml"
    manifest.write_text(yaml.safe_dump(MODEL))
    source = context_dir(tmp_path / "src")
    command = asyncio.create_task(asyncio.to_thread(
        applybuild.main, ["--wait", "-f", str(manifest), str(source)], cluster_of(k8s)))
    await eventually(lambda: any("build" in r.data["metadata"]["name"] for r in k8s["post batch/v1/jobs"]), 15)
    build = next(r.data["metadata"]["name"] for r in k8s["post batch/v1/jobs"] if "build" in r.data["metadata"]["name"])
    await finish_job(k8s, build, ok=False, message="ERROR: failed to solve: process \"pip install nope\"",
                     namespace=BUILD_NAMESPACE)
    assert await asyncio.wait_for(command, 15) == Exit.FAILED
    assert "BuildFailed: ERROR: failed to solve" in capsys.readouterr().err


def test_no_cluster_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "missing"))
    assert notebook.main(["-d", str(tmp_path)]) == Exit.NO_CLUSTER
    assert "no cluster" in capsys.readouterr().err


async def test_a_cluster_without_the_crds_is_named(kmock: kmock.KubernetesEmulator, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    kmock.resources.load_bundled()  # an API server without modelplane's CRDs
    code = await asyncio.wait_for(asyncio.to_thread(notebook.main, ["-d", str(tmp_path)],
                                                    Cluster(client_for(kmock), NAMESPACE)), 20)
    assert code == Exit.NO_CRDS
    assert "no modelplane CRDs" in capsys.readouterr().err


async def test_a_notebook_held_back_by_quota_exits_with_the_reason(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    command = asyncio.create_task(asyncio.to_thread(notebook.main, ["-d", str(tmp_path / "nb")], cluster_of(k8s)))
    (tmp_path / "nb").mkdir()
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
    assert "QuotaExceeded" in capsys.readouterr().err


async def test_notebook_syncs_both_ways_and_suspends_on_exit(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "my-repo"
    work.mkdir()
    (work / "analysis.py").write_text("import torch")
    forwarded: list[tuple[str, str, int]] = []
    stop = threading.Event()

    class Forward:
        def terminate(self) -> None:
            forwarded.append(("terminated", "", 0))

    def port_forward(namespace: str, pod: str, port: int) -> Any:
        forwarded.append((namespace, pod, port))
        return Forward()

    command = asyncio.create_task(asyncio.to_thread(
        notebook.main, ["-q", "-d", str(work), "--sync-interval", "0.1"], cluster_of(k8s), port_forward,
        lambda: not stop.is_set()))
    await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, "my-repo"]["spec"]["replicas"] == 1, 10)
    response = await k8s.patch(f"/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/my-repo/status",
                               json={"status": {"replicas": 1, "readyReplicas": 1}})
    assert response.status == 200
    await eventually(lambda: forwarded[:1] == [(NAMESPACE, "my-repo-0", 8888)], 10)
    prefix = "ml/notebooks/my-repo/workspace/"
    await eventually(lambda: bucket.get_blob(prefix + "analysis.py") is not None, 10)  # local -> notebook
    bucket.blob(prefix + "../../escape.py").upload_from_string(b"planted")  # anyone with the workload identity
    bucket.blob(prefix + "out/plot.png").upload_from_string(b"png")  # the notebook writes a result
    await eventually(lambda: (work / "out" / "plot.png").is_file(), 10)  # notebook -> local
    (work / "analysis.py").unlink()
    await eventually(lambda: bucket.get_blob(prefix + "analysis.py") is None, 10)  # deletions too
    stop.set()
    assert await asyncio.wait_for(command, 10) == Exit.OK
    assert forwarded[-1][0] == "terminated"
    assert obj_of(k8s, "Notebook", "my-repo")["spec"]["suspend"] is True  # Ctrl-C / exit suspends
    await eventually(lambda: k8s.objects["apps/v1/statefulsets", NAMESPACE, "my-repo"]["spec"]["replicas"] == 0)
    token = k8s.objects["v1/secrets", NAMESPACE, "notebook-my-repo-token"]["stringData"]["token"]
    printed = capsys.readouterr()
    assert printed.out.strip() == "http://localhost:8888/"  # --quiet: just the URL, and no token unless asked
    assert token not in printed.out + printed.err
    assert printed.err.count("warning: not synced: '../../escape.py'") == 1  # named once, not at every sync
    assert not (tmp_path.parent / "escape.py").exists() and not (tmp_path / "escape.py").exists()

    # `kubectl notebook NAME` reopens it with the same token; --no-suspend leaves it running on exit.
    code = await asyncio.to_thread(notebook.main, ["-q", "my-repo", "--no-suspend", "--show-token"], cluster_of(k8s),
                                   port_forward, lambda: False)
    assert code == Exit.OK and obj_of(k8s, "Notebook", "my-repo")["spec"]["suspend"] is False
    assert capsys.readouterr().out.strip() == f"http://localhost:8888/?token={token}"  # --show-token: asked for
