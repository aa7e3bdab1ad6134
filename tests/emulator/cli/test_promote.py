"""`kubectl promote`: a manual promotion or rollback is one command, checked before it changes anything."""

import asyncio

import kmock
import pytest
from google.cloud import storage

from modelplane.cli import promote
from modelplane.cli.errors import Exit
from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually
from tests.support.objects import create, finish_job, obj_of, write_artifacts

MODEL = {"apiVersion": "modelplane.dev/v1alpha1", "kind": "Model", "metadata": {"name": "clf"},
         "spec": {"image": "loader:1", "params": {"n": 1}}}


async def test_promote_pins_an_existing_version_and_auto_unpins(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket,
        capsys: pytest.CaptureFixture[str]) -> None:
    await create(k8s, MODEL)
    write_artifacts(bucket, "ml/models/clf/v1/", {"weights.json": 10})
    await finish_job(k8s, "model-clf-1")
    await eventually(lambda: obj_of(k8s, "Model", "clf")["status"].get("champion") == 1)
    response = await k8s.patch(f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/models/clf",
                               json={"spec": {"params": {"n": 2}}})  # a new spec: a new run, version 2
    assert response.status == 200
    write_artifacts(bucket, "ml/models/clf/v2/", {"weights.json": 20})
    await finish_job(k8s, "model-clf-2")
    await eventually(lambda: obj_of(k8s, "Model", "clf")["status"].get("champion") == 2)

    assert await asyncio.to_thread(promote.main, ["clf", "7"]) == Exit.USAGE  # no such version: nothing changes
    assert "Model clf has no version 7" in capsys.readouterr().err
    assert "champion" not in obj_of(k8s, "Model", "clf")["spec"]

    assert await asyncio.to_thread(promote.main, ["clf", "1"]) == Exit.OK
    assert "champion pinned to version 1" in capsys.readouterr().out
    await eventually(lambda: obj_of(k8s, "Model", "clf")["status"].get("champion") == 1)
    assert obj_of(k8s, "Model", "clf")["status"]["artifacts"]["url"].endswith("/ml/models/clf/v1/")
    assert "model-clf-3" not in [key[2] for key in k8s.objects]  # a rollback runs nothing

    assert await asyncio.to_thread(promote.main, ["clf"]) == Exit.USAGE  # neither a version nor --auto
