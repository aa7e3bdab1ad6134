"""The README's walkthrough, run: the ML user's commands, in order, against the API server emulator with the
operator running, and the cluster's controllers played (every Job succeeds after writing into its output prefix,
every Deployment becomes available). A change that breaks a step of the README breaks this test.

Only what needs a real cluster is left out: the curl to the served model (its `/content/model` path is checked on
the server's Deployment instead) and `kubectl wait`'s timeout.
"""

import asyncio
import re
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import kmock
import yaml
from google.cloud import storage

from modelplane.deploy import crds
from tests.support.facts import NAMESPACE
from tests.support.kube import Operator, eventually, in_background
from tests.support.objects import create, exists, obj_of, ready

ROOT = Path(__file__).resolve().parents[3]
SECTION = "## From `pulumi up` to a served fine-tuned model"


def walkthrough_commands() -> list[list[str]]:
    """The ML user's kubectl commands from the README's walkthrough, as argument lists (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    block = section[section.index("ML user"):]
    block = block[block.index("\n\n") + 2:block.index("\n\n", block.index("\n\n") + 2)]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["kubectl"]:
            commands.append(words[1:])
    return commands


def _output_prefix(job: Any) -> str | None:
    """Where a Job writes its result: the prefix of its one writable bucket volume."""
    for volume in job["spec"]["template"]["spec"].get("volumes", []):
        csi = volume.get("csi", {})
        if csi and not csi.get("readOnly"):
            match = re.search(r"only-dir=([^,]+)", csi["volumeAttributes"]["mountOptions"])
            return match.group(1) + "/" if match else None
    return None


@asynccontextmanager
async def controllers(k8s: kmock.KubernetesEmulator, bucket: storage.Bucket) -> AsyncIterator[None]:
    """Play the Job controller and the kubelet: every Job succeeds, every Deployment's replicas become ready."""
    done: set[tuple[tuple[str, str], str | None, str]] = set()

    async def play() -> None:
        while True:
            for key, obj in list(k8s.objects.items()):  # keys: (resource, namespace, name)
                resource, namespace, name = key
                kind = (resource.group, resource.plural)
                if (kind, namespace, name) in done or obj.deleted:
                    continue
                if kind == ("batch", "jobs"):
                    prefix = _output_prefix(obj)
                    if prefix:
                        bucket.blob(prefix + "result.safetensors").upload_from_string(b"w" * 64)
                    await k8s.patch(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status", json={"status": {
                        "succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}})
                    done.add((kind, namespace, name))
                elif kind == ("apps", "deployments"):
                    await k8s.patch(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status", json={
                        "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}})
                    done.add((kind, namespace, name))
            await asyncio.sleep(0.05)

    async with in_background(play):
        yield


KIND_OF = {"model": "Model", "dataset": "Dataset", "ds": "Dataset", "modelserver": "ModelServer"}


async def run_step(k8s: kmock.KubernetesEmulator, command: list[str]) -> None:
    """What `kubectl <command>` does, or checks what it would show."""
    assert command[:2] == ["-n", NAMESPACE], command  # every step names the tenant namespace
    verb, rest = command[2], command[3:]
    if verb == "create" and rest[:2] == ["secret", "generic"]:
        key, _, value = rest[3].removeprefix("--from-literal=").partition("=")
        response = await k8s.post(f"/api/v1/namespaces/{NAMESPACE}/secrets", json={
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": rest[2], "namespace": NAMESPACE},
            "stringData": {key: value}})
        assert response.status == 200
    elif verb == "apply":
        await create(k8s, yaml.safe_load((ROOT / rest[1]).read_text()))
    elif verb == "get":
        # `kubectl get modelplane` lists every kind through the category its CRD declares.
        assert rest == ["modelplane"] and all("modelplane" in crd["spec"]["names"]["categories"] for crd in crds())
    elif verb == "wait":
        kind, name = next(w for w in rest if "/" in w and not w.startswith("--")).split("/")
        await eventually(lambda: ready(k8s, KIND_OF[kind], name)["status"] == "True", timeout=30)
    elif verb == "port-forward":
        service, port = rest[0].removeprefix("service/"), int(rest[1].split(":")[1])
        await eventually(lambda: exists(k8s, "v1/services", service), timeout=30)
        assert port in [p["port"] for p in k8s.objects["v1/services", NAMESPACE, service]["spec"]["ports"]]
    else:
        raise AssertionError(f"the walkthrough test does not know `kubectl {' '.join(command)}`")


async def test_the_readme_walkthrough_serves_a_fine_tuned_model(
        k8s: kmock.KubernetesEmulator, operator: Operator, bucket: storage.Bucket) -> None:
    commands = walkthrough_commands()
    assert len(commands) >= 8
    async with controllers(k8s, bucket):
        for command in commands:
            await run_step(k8s, command)
        # The last step serves the fine-tuned model: Ready, and vLLM reads it from the path the curl names.
        await eventually(lambda: ready(k8s, "ModelServer", "falcon-7b-squad")["status"] == "True", timeout=30)
    deployment = k8s.objects["apps/v1/deployments", NAMESPACE, "falcon-7b-squad"]
    assert "/content/model" in " ".join(deployment["spec"]["template"]["spec"]["containers"][0].get("args", []))
    assert obj_of(k8s, "Model", "falcon-7b-squad")["status"]["ready"] is True
