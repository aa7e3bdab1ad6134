"""The operator in-process against kmock's Kubernetes emulator: the emulator tests' fixtures, and waiting helpers."""

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import kmock
import kubernetes
import pytest
import pytest_asyncio
import yaml
from google.cloud import storage
from google.oauth2 import service_account

from modelplane.api import GROUP, KINDS, VERSION
from modelplane.deploy import system, tenants
from modelplane.names import BUILD_NAMESPACE
from modelplane.operator.context import Context
from modelplane.operator.handlers import start, stop
from modelplane.operator.kube import USER_AGENT, Kube
from modelplane.operator.login import from_configuration
from modelplane.operator.metrics import Metrics
from modelplane.storage import ArtifactStore, UploadSigner
from tests.support import rbac
from tests.support.facts import DEV_CLUSTER, DEV_PLATFORM, NAMESPACE, OPERATOR_USER

# --- the operator in-process against kmock's Kubernetes emulator ----------------------------------------------


@pytest.fixture
def k8s(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    """kmock's emulator with the built-in resources and modelplane's CRDs."""
    kmock.resources.load_bundled()
    for kind in KINDS:
        kmock.resources[f"{GROUP}/{VERSION}/{kind.plural}"] = kmock.ResourceInfo(
            kind=kind.kind, singular=kind.singular, namespaced=True, subresources={"status"},
            verbs={"list", "watch", "get", "patch", "create", "delete"})
    for namespace in (NAMESPACE, BUILD_NAMESPACE):
        kmock.objects["v1/namespaces", None, namespace] = {"apiVersion": "v1", "kind": "Namespace",
                                                           "metadata": {"name": namespace}}
    return kmock


TOKEN = "test"  # the kubeconfig's bearer token: every request the operator makes must carry it


def kubeconfig_for(k8s: kmock.KubernetesEmulator) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(k8s.url)}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u", "namespace": NAMESPACE}}],
    }


@pytest.fixture
def kubeconfig(k8s: kmock.KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The kubeconfig of the CLI's tests and of an operator run outside a cluster."""
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_for(k8s)))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


def kube_for(k8s: kmock.KubernetesEmulator) -> Kube:
    """The operator's client for the emulator, logged in as outside a cluster: the `kubernetes` package loads the
    kubeconfig (the token under the key the installed version uses), login.from_configuration reads it."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
        kubeconfig_for(k8s), client_configuration=configuration)
    return Kube(from_configuration(configuration))


class Operator:
    """A running in-process operator (handlers.start, as main.run starts it); `restart()` stops it and starts a fresh
    one on the same emulator."""

    def __init__(self, k8s: kmock.KubernetesEmulator, store: ArtifactStore, signer: UploadSigner) -> None:
        self.k8s, self.store, self.signer = k8s, store, signer
        self.context: Context | None = None
        self.metrics = Metrics()  # its own registry, kept across restarts as a process's would not be

    async def start(self) -> None:
        cluster = dataclasses.replace(DEV_CLUSTER, bucket=self.store.bucket.name)  # the test's own bucket
        self.context = Context(kube=kube_for(self.k8s), cluster=cluster, store=self.store, signer=self.signer,
                               metrics=self.metrics, namespaces=(NAMESPACE,))
        watches = len(self.k8s[f"watch {GROUP}/{VERSION}/models"])
        start(self.context)
        # Objects created before the watches exist are listed; wait, so that a test's next step is seen as a change.
        await eventually(lambda: len(self.k8s[f"watch {GROUP}/{VERSION}/models"]) > watches)
        await eventually(lambda: len(self.k8s["watch batch/v1/jobs"]) > 0)

    async def stop(self) -> None:
        assert self.context is not None
        await asyncio.wait_for(stop(self.context), 30)

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@pytest_asyncio.fixture
async def operator(k8s: kmock.KubernetesEmulator, kubeconfig: Path, bucket: storage.Bucket,
                   signing_credentials: service_account.Credentials) -> AsyncIterator[Operator]:
    running = Operator(k8s, ArtifactStore(bucket.client, bucket.name), UploadSigner(bucket, signing_credentials))
    await running.start()
    yield running
    await running.stop()
    # Whatever the test made the operator do, the RBAC the stack deploys allows, in the namespace it was done in.
    # The API server authenticates a request before RBAC sees it: one without the token would be a 401.
    assert {str(r.headers.get("Authorization")) for r in list(k8s) if _from_operator(r)} == {f"Bearer {TOKEN}"}
    assert rbac.denied([*system(DEV_PLATFORM), *tenants(DEV_PLATFORM)], OPERATOR_USER,
                  (r for r in list(k8s) if _from_operator(r))) == []


def _from_operator(request: Any) -> bool:
    """The operator's requests (its calls and its watches), not the test's or the CLI's."""
    return str(request.headers.get("User-Agent", "")).startswith(USER_AGENT)


async def eventually(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.perf_counter() + timeout
    while True:
        try:
            if predicate():
                return
        except (KeyError, ValueError, IndexError, TypeError):
            pass
        if time.perf_counter() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def in_background(work: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run `work` (a played controller's loop) for the duration of the block, and cancel it at the end."""
    task = asyncio.create_task(work())
    try:
        yield
    finally:
        task.cancel()
