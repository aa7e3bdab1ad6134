"""The operator process (main.run): its liveness probe and its drain on SIGTERM, as the kubelet uses them."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket

import aiohttp
import kmock
from google.cloud import storage
from google.oauth2 import service_account

from modelplane.operator.context import Context
from modelplane.operator.main import run
from modelplane.storage import ArtifactStore, UploadSigner
from tests.support.facts import DEV_CLUSTER, NAMESPACE
from tests.support.kube import eventually, kube_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_liveness_fails_once_a_watch_has_ended_and_sigterm_drains_the_process(
        k8s: kmock.KubernetesEmulator, bucket: storage.Bucket,
        signing_credentials: service_account.Credentials) -> None:
    ctx = Context(kube=kube_for(k8s), cluster=dataclasses.replace(DEV_CLUSTER, bucket=bucket.name),
                  store=ArtifactStore(bucket.client, bucket.name), signer=UploadSigner(bucket, signing_credentials),
                  namespaces=(NAMESPACE,))
    url = f"http://127.0.0.1:{free_port()}/healthz"
    process = asyncio.create_task(run(ctx, url))
    await eventually(lambda: len(k8s["watch batch/v1/jobs"]) > 0)
    async with aiohttp.ClientSession() as http:
        assert (await http.get(url)).status == 200
        ctx.watching[0].cancel()  # as if an informer had ended: the operator would miss that kind's events
        await eventually(lambda: ctx.watching[0].done())
        assert (await http.get(url)).status == 503  # so the kubelet restarts the pod
    os.kill(os.getpid(), signal.SIGTERM)  # what the kubelet sends; run() handles it on its loop
    await asyncio.wait_for(process, 30)
    assert all(task.done() for task in (*ctx.tasks, *ctx.watching))
    assert ctx.kube._session is None and ctx.kube._watches is None  # its connections closed
