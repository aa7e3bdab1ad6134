"""Every pod the operator asks for is admitted by the Pod Security Standard its namespace enforces.

The levels are read from the rendered namespaces (modelplane.deploy), so a stricter namespace or a looser pod fails
here rather than as a FailedCreate event on a real cluster. Each case is one code path of the operator: runs,
builds, servers, notebooks, every file in examples/, and the operator's own Deployment. Test ids name the level.
"""

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api.common import Build, Workload
from modelplane.api.dataset import DatasetSpec
from modelplane.api.model import ModelSpec
from modelplane.api.modelserver import ModelServerSpec
from modelplane.api.notebook import NotebookSpec
from modelplane.deploy import ENFORCE_LABEL, all_manifests
from modelplane.meta import Owner
from modelplane.names import BUILD_NAMESPACE
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.build import BuildObserved, build_stage
from modelplane.reconcile.common import JobState, Outcome, RefState
from modelplane.reconcile.notebook import NotebookObserved, reconcile_notebook
from modelplane.reconcile.server import ServerObserved, reconcile_server
from tests.support.facts import DEV_CLUSTER, DEV_PLATFORM, NAMESPACE, owner
from tests.support.pod_security import Level, pod_template, violations

NOW = "2026-11-24T10:00:00Z"
EXAMPLES = Path(__file__).parents[3] / "examples"
RENDERED = [m for group in all_manifests(DEV_PLATFORM).values() for m in group]
ENFORCED: dict[str, Level] = {m["metadata"]["name"]: m["metadata"]["labels"][ENFORCE_LABEL]
                              for m in RENDERED if m["kind"] == "Namespace"}
POD_MAKERS = ("Pod", "Job", "JobSet", "Deployment", "StatefulSet")
READY = {field: RefState(found=True, ready=True, url=f"gs://{DEV_CLUSTER.bucket}/{NAMESPACE}/{field}/v1/")
         for field in ("baseModel", "dataset", "model")}
GIT = {"git": {"url": "https://github.com/org/repo", "ref": "v1"}}
UPLOAD = {"upload": {"md5": "d41d8cd98f00b204e9800998ecf8427e", "requestID": "r1"}}
GPU = {"gpu": {"type": "nvidia-l4"}}


def built(who: Owner, spec: Workload) -> dict[str, Any]:
    """The status of an object whose build finished: its workload runs the built image."""
    assert spec.build is not None
    done = BuildObserved(job=JobState(succeeded=True), stored=True)
    return build_stage(who, spec.build, {}, DEV_CLUSTER, done).fields


def outcome_of(kind: str, name: str, spec: dict[str, Any]) -> Outcome:
    """The operator's first answer to a new object whose inputs are Ready (and whose build, if any, finished)."""
    who = owner(kind, name)
    if kind == "ModelServer":
        server = ModelServerSpec.model_validate(spec)
        status = built(who, server) if server.build else {}
        return reconcile_server(who, server, status, DEV_CLUSTER, ServerObserved(READY["model"]), NOW)
    if kind == "Notebook":
        notebook = NotebookSpec.model_validate(spec)
        status = built(who, notebook) if notebook.build else {}
        return reconcile_notebook(who, notebook, status, DEV_CLUSTER, NotebookObserved(refs=READY, new_token="t"),
                                  NOW)
    run = (DatasetSpec if kind == "Dataset" else ModelSpec).model_validate(spec)
    return reconcile(who, run, built(who, run) if run.build else {}, DEV_CLUSTER, Observed(refs=READY), NOW)


def build_job_of(kind: str, name: str, build: dict[str, Any]) -> dict[str, Any]:
    stored = BuildObserved(stored=True)  # an upload is in the bucket: the build can start
    (job,) = build_stage(owner(kind, name), Build.model_validate(build), {}, DEV_CLUSTER, stored).children
    return job


def pod_makers(outcome: Outcome) -> list[dict[str, Any]]:
    makers = [c for c in outcome.children if c["kind"] in POD_MAKERS]
    assert makers, outcome.status  # every case below must reach the point where pods are asked for
    return makers


def example_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        kind, name, spec = obj["kind"], obj["metadata"]["name"], obj["spec"]
        cases += [(f"example-{path.stem}", m) for m in pod_makers(outcome_of(kind, name, spec))]
        if "build" in spec:
            cases.append((f"example-{path.stem}-build", build_job_of(kind, name, spec["build"])))
    return cases


def operator_deployment() -> dict[str, Any]:
    (deployment,) = [m for m in RENDERED if m["kind"] == "Deployment"]
    return deployment


# (case, kind, spec): one object per code path of the reconcilers.
OBJECTS: list[tuple[str, str, dict[str, Any]]] = [
    ("dataset-image", "Dataset", {"image": "loader:1"}),
    ("model-import-gpu", "Model", {"image": "loader:1", "resources": GPU}),
    ("model-fine-tune-with-inputs-gpu", "Model", {"image": "trainer:1", "baseModel": {"name": "b"},
                                                  "dataset": {"name": "d"}, "resources": GPU}),
    ("model-multi-node-gpu", "Model", {"image": "trainer:1", "baseModel": {"name": "b"}, "dataset": {"name": "d"},
                                       "resources": {**GPU, "nodes": 2}}),
    ("model-built-from-git", "Model", {"build": GIT}),
    ("server-default-image", "ModelServer", {"model": {"name": "m"}}),
    ("server-custom-image", "ModelServer", {"model": {"name": "m"}, "image": "server:1"}),
    ("server-gpu", "ModelServer", {"model": {"name": "m"}, "resources": GPU}),
    ("server-with-capture", "ModelServer", {"model": {"name": "m"}, "logging": {}, "resources": GPU}),
    ("server-autoscaling", "ModelServer", {"model": {"name": "m"},
                                           "autoscaling": {"minReplicas": 1, "maxReplicas": 3}}),
    ("notebook-default", "Notebook", {}),
    ("notebook-with-inputs-gpu", "Notebook", {"model": {"name": "m"}, "dataset": {"name": "d"},
                                              "resources": GPU}),
    ("notebook-suspended", "Notebook", {"suspend": True}),
    ("notebook-idle-watched", "Notebook", {"idle": {"timeoutMinutes": 60}, "resources": GPU}),
    ("notebook-built-from-upload", "Notebook", {"build": UPLOAD}),
]
CASES: list[tuple[str, dict[str, Any]]] = [
    *((case, m) for case, kind, spec in OBJECTS for m in pod_makers(outcome_of(kind, case, spec))),
    ("build-from-git", build_job_of("Model", "m", GIT)),
    ("build-from-upload", build_job_of("Notebook", "nb", UPLOAD)),
    *example_cases(),
    ("operator", operator_deployment()),
]


def enforced(manifest: dict[str, Any]) -> Level:
    return ENFORCED[manifest["metadata"]["namespace"]]


@pytest.mark.parametrize("manifest", [m for _, m in CASES],
                         ids=[f"{case}-{m['kind']}@{enforced(m)}" for case, m in CASES])
def test_admitted_at_the_level_its_namespace_enforces(manifest: dict[str, Any]) -> None:
    assert violations(enforced(manifest), manifest) == []


def test_the_namespaces_enforce_what_the_design_says() -> None:
    """Tenants run their own images at baseline; builds run apart at baseline; the operator at restricted."""
    assert ENFORCED == {"modelplane-system": "restricted", BUILD_NAMESPACE: "baseline", NAMESPACE: "baseline"}
    builds = [m for case, m in CASES if case.startswith("build-from") or case.endswith("-build")]
    assert len(builds) == 3 and {m["metadata"]["namespace"] for m in builds} == {BUILD_NAMESPACE}


TENANT_CASES = [(case, m) for case, m in CASES if m["metadata"]["namespace"] == NAMESPACE]


@pytest.mark.parametrize("manifest", [m for _, m in TENANT_CASES],
                         ids=[f"{case}-{m['kind']}@restricted" for case, m in TENANT_CASES])
def test_tenant_workloads_would_pass_restricted_too(manifest: dict[str, Any]) -> None:
    """Tenant namespaces enforce baseline (users' images may expect more), yet what the operator sets passes the
    strictest level: non-root, no escalation, no capabilities, the runtime's seccomp profile."""
    assert violations("restricted", manifest) == []


def test_the_builder_is_short_of_restricted_only_where_rootless_buildkit_needs_it() -> None:
    """newuidmap/newgidmap are setuid and file-capability helpers: the builder keeps escalation and its default
    capabilities; everything else about it is restricted."""
    job = build_job_of("Model", "m", GIT)
    assert {(f.check, f.detail) for f in violations("restricted", job)} == {
        ("allowPrivilegeEscalation", 'containers "buildkit" must set securityContext.allowPrivilegeEscalation=false'),
        ("capabilities_restricted", 'containers "buildkit" must set securityContext.capabilities.drop=["ALL"]'),
    }


def test_no_pod_sets_a_field_whose_check_changed_between_policy_versions() -> None:
    """The port evaluates the newest policy; the fields below are where older API servers are stricter, so a pod
    that sets none of them gets the same answer from any current version."""
    for case, manifest in CASES:
        _, pod = pod_template(manifest)
        containers = [*pod.get("initContainers", []), *pod["containers"]]
        assert "hostUsers" not in pod and "sysctls" not in pod["securityContext"], case
        assert not any("procMount" in c.get("securityContext", {}) for c in containers), case
        assert not any("host" in (c.get(probe) or {}).get("httpGet", {}) for c in containers
                       for probe in ("livenessProbe", "readinessProbe", "startupProbe")), case
