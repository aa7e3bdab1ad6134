"""Every name the CRDs admit gives children the API server accepts: names, labels, ports, volumes, env.

The owners' names are the longest each CRD admits and awkward legal ones; the builders are the operator's own, and
each name is checked with the validator Kubernetes applies to it (tests/support/names.py).
"""

from collections.abc import Iterator
from typing import Any

import pytest

from modelplane.api.common import Build
from modelplane.api.model import ModelSpec
from modelplane.api.modelserver import ModelServerSpec
from modelplane.api.notebook import MAX_NOTEBOOK_NAME, NotebookSpec
from modelplane.api.resource import MAX_NAME
from modelplane.builders.build import build_job
from modelplane.builders.job import run_children
from modelplane.builders.notebook import notebook_children
from modelplane.builders.server import server_children
from modelplane.builders.workload import Mount
from modelplane.meta import child_name
from tests.support import names
from tests.support.apiserver import AdmissionError, admit
from tests.support.facts import DEV_CLUSTER, owner

Obj = dict[str, Any]
REVISION_HASH_LENGTH = 10  # kubernetes pkg/controller/history: HashControllerRevision, at most 10 characters

# Names each CRD admits: the longest, all digits, a single character, double hyphens.
ANY_KIND = ["a" * MAX_NAME, "7" * MAX_NAME, "x", "a--b", "0-" + "9" * (MAX_NAME - 2)]
SERVICE_KINDS = ["a" * MAX_NAME, "z" + "0" * (MAX_NAME - 1), "q", "a--1"]
NOTEBOOKS = ["n" * MAX_NOTEBOOK_NAME, "n" + "-9" * ((MAX_NOTEBOOK_NAME - 1) // 2), "a", "b--c"]
SPEC = {"image": "img:1", "env": {"HF_TOKEN": "${{ secrets.hf.token }}", "A.B-c_1": "x"},
        "params": {"learningRate": 0.1, "lora": True}, "resources": {"cpu": 0.5, "gpu": {"type": "nvidia-l4"}}}
BUILDS = [Build.model_validate({"git": {"url": "https://github.com/o/r", "ref": "feature/x" + "y" * 200}}),
          Build.model_validate({"upload": {"md5": "d41d8cd98f00b204e9800998ecf8427e", "requestID": "r" * 63}})]


def name_problems(child: Obj) -> list[str]:
    """The name rule of the child's kind (kubernetes pkg/apis/*/validation)."""
    name, kind = child["metadata"]["name"], child["kind"]
    if kind == "Service":
        return names.dns1035_label(name)
    problems = names.dns1123_subdomain(name)
    if kind == "Job":  # the Job controller labels its pods job-name / batch.kubernetes.io/job-name: <name>
        problems += names.label_value(name)
    if kind == "StatefulSet":
        problems += names.label_value(f"{name}-{'h' * REVISION_HASH_LENGTH}")  # controller-revision-hash
        problems += names.dns1123_label(f"{name}-0")  # the pod's name is its hostname
        problems += names.label_value(f"{name}-0")  # statefulset.kubernetes.io/pod-name
    return problems


def labels_of(child: Obj) -> Iterator[dict[str, str]]:
    yield child["metadata"].get("labels", {})
    spec = child.get("spec", {})
    yield spec.get("selector", {}).get("matchLabels", spec.get("selector", {}) if child["kind"] == "Service" else {})
    yield spec.get("template", {}).get("metadata", {}).get("labels", {})


def pod_problems(pod: Obj) -> list[str]:
    problems = []
    volumes = {v["name"] for v in pod.get("volumes", [])}
    problems += [p for v in volumes for p in names.dns1123_label(v)]
    for container in pod.get("initContainers", []) + pod["containers"]:
        problems += names.dns1123_label(container["name"])
        problems += [p for port in container.get("ports", []) for p in names.port_name(port["name"])]
        problems += [p for env in container.get("env", []) for p in names.env_var_name(env["name"])]
        problems += [f"mount of unknown volume {m['name']}" for m in container.get("volumeMounts", [])
                     if m["name"] not in volumes]
    return problems


def problems_of(children: list[Obj]) -> list[str]:
    problems = []
    for child in children:
        where = f"{child['kind']} {child['metadata']['name']}"
        found = name_problems(child)
        for labels in labels_of(child):
            found += [p for key, value in labels.items() for p in names.label_key(key) + names.label_value(value)]
        template = child.get("spec", {}).get("template")
        if template:
            found += pod_problems(template["spec"])
        found += [p for port in child.get("spec", {}).get("ports", []) if child["kind"] == "Service"
                  for p in names.port_name(port["name"])]
        found += [p for key in {**child.get("data", {}), **child.get("stringData", {})}
                  for p in names.config_map_key(key)]
        problems += [f"{where}: {p}" for p in found]
    return problems


def admitted(kind: str, name: str) -> None:
    """The CRD admits `name` (else the test's premise is wrong)."""
    spec: Obj = {"image": "img:1", "model": {"name": "m"}}  # `model` is ignored by kinds without one
    admit({"apiVersion": "modelplane.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec})


@pytest.mark.parametrize("name", ANY_KIND)
@pytest.mark.parametrize("kind", ["Dataset", "Model"])
def test_runs_and_builds(kind: str, name: str) -> None:
    admitted(kind, name)
    spec = ModelSpec.model_validate(SPEC)
    mounts = [Mount("artifacts", "ml/x/", "/content/artifacts", read_only=False),
              Mount("basemodel", "ml/y/", "/content/model", read_only=True)]
    who = owner(kind, name, generation=123456789)
    children = run_children(who, spec, "img:1", DEV_CLUSTER, mounts, child_name(who, who.generation))
    children += [build_job(who, build, "img:1", DEV_CLUSTER) for build in BUILDS]
    assert problems_of(children) == []


@pytest.mark.parametrize("name", SERVICE_KINDS)
def test_servers(name: str) -> None:
    admitted("ModelServer", name)
    spec = ModelServerSpec.model_validate({**SPEC, "model": {"name": "m" * MAX_NAME},
                                           "autoscaling": {"maxReplicas": 3}})
    for default_image in (True, False):
        children = server_children(owner("ModelServer", name), spec, "img:1", default_image, "ml/models/m/v1/",
                                   "gs://b/ml/models/m/v1/", DEV_CLUSTER)
        assert {c["kind"] for c in children} == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"}
        assert problems_of(children) == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks(name: str) -> None:
    admitted("Notebook", name)
    spec = NotebookSpec.model_validate(SPEC)
    inputs = [Mount("model", "ml/models/m/v1/", "/content/model", read_only=True),
              Mount("dataset", "ml/datasets/d/v1/", "/content/data", read_only=True)]
    for default_image in (True, False):
        children = notebook_children(owner("Notebook", name), spec, "img:1", default_image, inputs, DEV_CLUSTER,
                                     token="t", suspended=False)
        assert {c["kind"] for c in children} == {"Secret", "ConfigMap", "Service", "StatefulSet"}
        assert problems_of(children) == []


@pytest.mark.parametrize(("kind", "name", "message"), [
    (kind, "a" * (MAX_NAME + 1), "at most 63 characters") for kind in ("Dataset", "Model", "ModelServer", "Notebook")
] + [
    (kind, "a.b", "DNS-1123 label") for kind in ("Dataset", "Model", "ModelServer", "Notebook")
] + [
    ("ModelServer", "1abc", "must start with a letter"), ("Notebook", "1abc", "must start with a letter"),
    ("Notebook", "n" * (MAX_NOTEBOOK_NAME + 1), "at most 52 characters"),
    ("Model", "Falcon", "DNS-1123 label"),
])
def test_names_the_operator_cannot_build_for_are_refused(kind: str, name: str, message: str) -> None:
    with pytest.raises(AdmissionError) as refused:
        admitted(kind, name)
    assert any(error.startswith("<root>: metadata.name") and message in error for error in refused.value.errors), \
        refused.value.errors


def test_the_validators_catch_what_they_should() -> None:
    """The checks above can fail: each validator refuses a name just past its rule."""
    assert names.dns1123_label("a" * 64) and names.dns1123_label("a.b") and names.dns1035_label("1a")
    assert names.label_value("a" * 64) and names.label_value("-a") and names.label_key("a/b/c")
    assert names.port_name("http-metrics-long") and names.port_name("80") and names.port_name("a--b")
    assert names.env_var_name("1A") and names.config_map_key("..x") and names.dns1123_subdomain("A")
    assert name_problems({"kind": "StatefulSet", "metadata": {"name": "n" * 53}})
