"""A sync's own lists (Kube.list_objects: a namespace's ModelVersions, Models, ModelServers) come in pages, as the
informers' do: a namespace with thousands of ModelVersions costs the operator one page of them at a time."""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from modelplane.api.common import GROUP, VERSION
from modelplane.api.modelversion import MODEL_VERSION
from modelplane.operator import kube as kube_module
from modelplane.operator.kube import ExpiredError, Kube
from tests.support.emulator import ApiServerEmulator
from tests.support.facts import NAMESPACE
from tests.support.kube import kube_for

PATH = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/modelversions"


async def records(k8s: kmock.KubernetesEmulator, *names: str) -> None:
    for name in names:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelVersion",
                "metadata": {"name": name, "namespace": NAMESPACE}, "spec": {"model": "clf", "version": 1}}
        assert (await k8s.post(PATH, json=body)).status == 200


def lists(k8s: kmock.KubernetesEmulator) -> list[dict[str, str]]:
    return [dict(r.params) for r in list(k8s) if r.url.path == PATH and r.action == kmock.action.LIST]


@pytest.fixture
def kube(k8s: kmock.KubernetesEmulator, monkeypatch: pytest.MonkeyPatch) -> Kube:
    monkeypatch.setattr(kube_module, "PAGE_SIZE", 2)
    return kube_for(k8s)


async def test_a_list_comes_in_pages_and_misses_nothing(k8s: kmock.KubernetesEmulator, kube: Kube) -> None:
    await records(k8s, "a", "b", "c", "d", "e")
    try:
        names = [record["metadata"]["name"] async for record in kube.list_objects(MODEL_VERSION, NAMESPACE)]
    finally:
        await kube.close()
    assert names == ["a", "b", "c", "d", "e"]
    queries = lists(k8s)
    assert [q.get("limit") for q in queries] == ["2", "2", "2"]
    assert "continue" not in queries[0] and all(q.get("continue") for q in queries[1:])


async def test_a_list_whose_snapshot_was_compacted_between_pages_fails_to_be_retried(
        k8s: kmock.KubernetesEmulator, kube: Kube) -> None:
    """etcd compacts every 5 minutes: a continue token older than that is 410 Expired. The sync fails with a
    TransientError (ExpiredError is one) and is retried, its list from the first page again."""
    await records(k8s, "a", "b", "c")
    assert isinstance(k8s, ApiServerEmulator)
    seen: list[Any] = []
    try:
        with pytest.raises(ExpiredError):
            async for record in kube.list_objects(MODEL_VERSION, NAMESPACE):
                seen.append(record["metadata"]["name"])
                if len(seen) == 2:  # the first page read: a write, and a compaction past the snapshot
                    await records(k8s, "z")
                    k8s.compact()
    finally:
        await kube.close()
    assert seen == ["a", "b"]
