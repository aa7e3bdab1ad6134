"""Every bucket path the operator uses for a tenant lies inside what the stack's IAM grants the identity using it.

The operator's side is produced, not restated: its reconcilers and builders run through the life of a tenant's
objects (a Dataset loaded and reloaded, a Model imported, one fine-tuned from both on one node and on several with
checkpoints, a ModelServer capturing payloads with a monitor run, an idle-watched Notebook, a build from an upload),
each fed the URLs the others wrote into their status, with the cluster facts the planned ConfigMap gives the operator.
Collected: every GCS FUSE volume of every child (`only-dir`, read-only or not) with the identity its pod runs as,
every `gs://` object a pod's script copies, the objects written and prefixes deleted (Outcome), each object's root
(deleted with it), and the bucket URLs in status (what members sync, what other objects mount). The stack's side is
the planned IAM bindings, their conditions evaluated by CEL (tests/support/iam.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from infra.config import parse_stack_config
from infra.offline import Plan, read_stack_values
from modelplane.api.dataset import DatasetSpec
from modelplane.api.model import ModelSpec
from modelplane.api.modelserver import ModelServerSpec
from modelplane.api.notebook import NotebookSpec
from modelplane.builders.workload import FUSE_DRIVER
from modelplane.cluster import ClusterFacts
from modelplane.layout import object_root, upload_object
from modelplane.names import GKE_SA_ANNOTATION, WORKLOAD_KSA
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.build import BuildObserved
from modelplane.reconcile.common import JobState, Outcome, RefState, prefix_of_url
from modelplane.reconcile.monitor import MonitorObserved, reconcile_monitoring
from modelplane.reconcile.notebook import NotebookObserved, reconcile_notebook
from modelplane.reconcile.server import ServerObserved, reconcile_server
from tests.support.facts import owner
from tests.support.iam import account, object_access, prefix_access, workload
from tests.support.plans import rendered

T0, T1 = "2026-12-03T09:20:00Z", "2026-12-03T10:00:05Z"
FILES = [{"name": "train.csv", "size": 10, "md5": "a"}]
MD5 = "0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class Use:
    """A bucket path the operator produced, who uses it (an IAM member), how, and where it came from."""

    member: str
    path: str  # an object, or a prefix (ending in `/`)
    write: bool
    source: str


@dataclass
class Uses:
    """What one tenant's objects made the operator produce, with the identities of the stack's plan."""

    plan: Plan
    tenant: str
    cluster: ClusterFacts
    found: list[Use] = field(default_factory=list)

    @property
    def workload(self) -> str:
        return workload(self.plan, self.tenant)

    def outcome(self, what: str, outcome: Outcome) -> Outcome:
        """The children's volumes and scripts, and the objects written and prefixes deleted (the operator's own
        identity does those; they must lie in the tenant's prefix all the same: the tenant's pods read them)."""
        for child in outcome.children:
            self.child(f"{what}: {child['kind']} {child['metadata']['name']}", child)
        self.found += [Use(self.workload, name, True, f"{what}: writes") for name in outcome.writes]
        self.found += [Use(self.workload, prefix, True, f"{what}: deletes") for prefix in outcome.deletes]
        return outcome

    def child(self, what: str, child: dict[str, Any]) -> None:
        namespace = child["metadata"].get("namespace", self.tenant)
        for pod in _pod_specs(child):
            member = self.member(namespace, pod["serviceAccountName"])
            for volume in pod.get("volumes", []):
                if volume.get("csi", {}).get("driver") != FUSE_DRIVER:
                    continue
                attributes = volume["csi"]["volumeAttributes"]
                assert attributes["bucketName"] == self.plan.outputs["bucket"], what
                options = dict(o.split("=", 1) for o in attributes["mountOptions"].split(",") if "=" in o)
                assert "only-dir" in options, f"{what}: volume {volume['name']} mounts the whole bucket"
                self.found.append(Use(member, options["only-dir"] + "/", not volume["csi"]["readOnly"],
                                      f"{what}: volume {volume['name']}"))
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                script = " ".join([*container.get("command", []), *container.get("args", [])])
                for bucket, name in re.findall(r"gs://([^/\s]+)/(\S+)", script):
                    assert bucket == self.plan.outputs["bucket"], what
                    self.found.append(Use(member, name, False, f"{what}: container {container['name']}"))

    def member(self, namespace: str, service_account: str) -> str:
        """The IAM member a pod acts as: the tenant's workload principal, or the Google service account its
        Kubernetes service account is annotated with, as the stack renders it."""
        if (namespace, service_account) == (self.tenant, WORKLOAD_KSA):
            return self.workload
        (annotated,) = [o["metadata"]["annotations"][GKE_SA_ANNOTATION] for o in rendered(self.plan)
                        if o["kind"] == "ServiceAccount" and o["metadata"].get("namespace") == namespace
                        and o["metadata"]["name"] == service_account]
        return account(annotated)

    def url(self, member: str, url: str, write: bool, what: str) -> str:
        self.found.append(Use(member, prefix_of_url(url), write, what))
        return url


def _pod_specs(value: Any) -> Iterator[dict[str, Any]]:
    """Every pod spec inside an object (a Job's, a JobSet's replicated Jobs', a StatefulSet's, a Deployment's)."""
    if isinstance(value, dict):
        if "containers" in value:
            yield value
        else:
            for item in value.values():
                yield from _pod_specs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _pod_specs(item)


def _cluster(plan: Plan) -> ClusterFacts:
    (config,) = [o for o in rendered(plan) if o["kind"] == "ConfigMap" and o["metadata"]["name"] ==
                 "modelplane-operator"]
    return ClusterFacts.from_env(config["data"])


def _ref(url: str) -> RefState:
    """A Ready input at the URL its status shows (its first version)."""
    return RefState(found=True, ready=True, url=url, version=1, digest="d")


def tenant_uses(plan: Plan, tenant: str) -> Uses:
    """Everything the operator produces for one tenant's objects, through their lives."""
    uses = Uses(plan, tenant, _cluster(plan))
    cluster, gpu = uses.cluster, {"gpu": {"type": uses.cluster.gpu_types[0]}}

    # A Dataset loaded, then loaded again with the same data (that version is dropped), then failing.
    feed, feed_spec = owner("Dataset", "feed", namespace=tenant), DatasetSpec.model_validate({"image": "loader:1"})
    started = uses.outcome("load", reconcile(feed, feed_spec, {}, cluster, Observed(), T0))
    loaded = uses.outcome("load done", reconcile(feed, feed_spec, started.status, cluster,
                                                 Observed(job=JobState(succeeded=True), manifest=FILES), T0)).status
    again = owner("Dataset", "feed", 2, namespace=tenant)
    reload = uses.outcome("reload", reconcile(again, feed_spec, loaded, cluster, Observed(), T1))
    uses.outcome("reload unchanged", reconcile(again, feed_spec, reload.status, cluster,
                                               Observed(job=JobState(succeeded=True), manifest=FILES), T1))
    uses.outcome("reload failed", reconcile(again, feed_spec, reload.status, cluster,
                                            Observed(job=JobState(failed=True)), T1))
    data = _ref(uses.url(uses.workload, loaded["artifacts"]["url"], False, "Dataset status.artifacts"))

    # A Model imported, then one fine-tuned from it and the Dataset, on one node and on several.
    base, base_spec = owner("Model", "base", namespace=tenant), ModelSpec.model_validate({"image": "importer:1"})
    started = uses.outcome("import", reconcile(base, base_spec, {}, cluster, Observed(), T0))
    imported = uses.outcome("import done", reconcile(base, base_spec, started.status, cluster,
                                                     Observed(job=JobState(succeeded=True)), T0)).status
    model = _ref(uses.url(uses.workload, imported["artifacts"]["url"], False, "Model status.artifacts"))
    refs = {"baseModel": model, "dataset": data}
    for name, nodes in (("ft", 1), ("ft-multi", 2)):
        tuned = owner("Model", name, namespace=tenant)
        spec = ModelSpec.model_validate({"image": "trainer:1", "baseModel": {"name": "base"},
                                         "dataset": {"name": "feed"}, "resources": {**gpu, "nodes": nodes}})
        started = uses.outcome(f"fine-tune {name}", reconcile(tuned, spec, {}, cluster, Observed(refs=refs), T0))
        uses.outcome(f"fine-tune {name} done", reconcile(tuned, spec, started.status, cluster,
                                                         Observed(job=JobState(succeeded=True), refs=refs), T0))

    # A ModelServer serving the import, capturing its traffic, and a monitor run over it.
    server = owner("ModelServer", "srv", namespace=tenant)
    server_spec = ModelServerSpec.model_validate({
        "model": {"name": "base"}, "resources": gpu, "logging": {},
        "monitoring": {"schedule": {"cron": "0 * * * *"}, "reference": {"name": "feed", "version": 1}}})
    uses.outcome("server", reconcile_server(server, server_spec, {}, cluster, ServerObserved(model=model), T0))
    waiting = reconcile_monitoring(server, server_spec, {}, 1, cluster, MonitorObserved(), T0)
    assert waiting.status is not None
    due = reconcile_monitoring(server, server_spec, waiting.status, 1, cluster, MonitorObserved(), T1)
    assert due.children, "no monitor run was started"
    uses.outcome("monitor run", Outcome(due.children, {}))

    # An idle-watched Notebook with both inputs: its workspace and activity, which its members sync too.
    notebook = owner("Notebook", "nb", namespace=tenant)
    notebook_spec = NotebookSpec.model_validate({"model": {"name": "base"}, "dataset": {"name": "feed"},
                                                 "resources": gpu, "idle": {"timeoutMinutes": 60}})
    shown = uses.outcome("notebook", reconcile_notebook(notebook, notebook_spec, {}, cluster, NotebookObserved(
        refs={"model": model, "dataset": data}, new_token="t"), T0)).status
    for member in [uses.workload, *_members(plan)[tenant]]:
        uses.url(member, shown["workspace"], True, "Notebook status.workspace")
        uses.url(member, shown["activity"], True, "Notebook status.activity")

    # A build from an uploaded context, once stored: the builder's pod reads it (the CLI puts it with a URL the
    # operator signs).
    built = owner("Model", "built", namespace=tenant)
    built_spec = ModelSpec.model_validate({"build": {"upload": {"md5": MD5, "requestID": "r"}}})
    uses.outcome("build", reconcile(built, built_spec, {"buildUpload": {"requestID": "r"}}, cluster,
                                    Observed(build=BuildObserved(stored=True)), T0))
    assert any(use.path == upload_object(built, MD5) for use in uses.found), "the build read no upload"

    # Each object's root, deleted with it (`onDelete: Delete`).
    for who in (feed, base, server, notebook, built):
        uses.found.append(Use(uses.workload, object_root(who), True, f"{who.kind} {who.name} deleted"))
    return uses


def _members(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Each tenant's members as the stack file names them (what the stack grants their notebooks prefix to)."""
    values = {key.split(":", 1)[1]: value for key, value in read_stack_values(plan.stack).items()}
    return {tenant.name: tenant.members for tenant in parse_stack_config(values, plan.stack).tenants}


def _admitted(plan: Plan, use: Use) -> set[str]:
    if use.path.endswith("/"):
        return prefix_access(plan, use.path, use.write)
    return object_access(plan, use.path, use.write)


# What each part of the layout looks like in a path: the collection must have met every one.
PARTS = {"object version": r"/v1/$", "dataset manifest": r"\.manifest\.json$", "lineage": r"/lineage\.json$",
         "checkpoints": r"/checkpoints/v\d+/$", "notebook workspace": r"/notebooks/nb/workspace/$",
         "notebook activity": r"/notebooks/nb/activity/$", "payloads": r"/modelservers/srv/payloads/$",
         "monitor run": r"/monitor/run-1/$", "upload": r"^uploads/.*\.tar\.gz$", "object root": r"/nb/$"}


def test_every_path_the_operator_uses_for_a_tenant_lies_inside_what_iam_grants(stack_plan: Plan) -> None:
    for tenant in stack_plan.outputs["tenants"]:
        uses = tenant_uses(stack_plan, tenant)
        for part, pattern in PARTS.items():
            assert any(re.search(pattern, use.path) for use in uses.found), f"{tenant}: no {part} met"
        outside = [f"{use.source}: {use.member} may not {'write' if use.write else 'read'} {use.path}"
                   for use in uses.found if use.member not in _admitted(stack_plan, use)]
        assert outside == []


def test_and_no_other_tenants_identity_reaches_them(prod_plan: Plan) -> None:
    """The check above is not vacuous: the same paths are out of every other tenant's reach."""
    tenants, members = prod_plan.outputs["tenants"], _members(prod_plan)
    builders = prod_plan.outputs["builderServiceAccounts"]
    for tenant in tenants:
        others = {identity for other in tenants if other != tenant
                  for identity in (workload(prod_plan, other), account(builders[other]), *members[other])}
        for use in tenant_uses(prod_plan, tenant).found:
            reached = _admitted(prod_plan, use) & others
            assert not reached, f"{use.source}: {use.path} is reached by {reached}"
