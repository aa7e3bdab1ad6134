"""The in-cluster half in the same stack: through the cluster's provider, in dependency order, from one source."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pulumi.runtime import rpc

from infra.cli import main, manifests_yaml
from infra.config import parse_stack_config
from infra.offline import Plan, PlannedResource, read_stack_values
from infra.operator_image import source_tag
from infra.platform import platform_facts
from infra.queueing import JOBSET_MANIFESTS, KUEUE_MANIFESTS, queues
from modelplane.cluster import ClusterFacts
from modelplane.deploy import all_manifests
from modelplane.operator.access import Scope, rules
from tests.support import kueue, podmonitoring
from tests.support.facts import KUBERNETES_VERSION

OPERATOR_SUBJECT = {"kind": "ServiceAccount", "name": "modelplane-operator", "namespace": "modelplane-system"}


def groups(plan: Plan) -> dict[str, PlannedResource]:
    return {r.name: r for r in plan.of_type("kubernetes:yaml/v2:ConfigGroup")}


def objects(plan: Plan, group: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in groups(plan)[group].inputs["objs"] if o["kind"] == kind]


def test_every_in_cluster_resource_uses_the_clusters_provider(stack_plan: Plan) -> None:
    provider = stack_plan.one("pulumi:providers:kubernetes")
    in_cluster = [r for r in stack_plan.resources if r.type.startswith("kubernetes:")]
    assert {r.name for r in in_cluster} == {"crds", "system", "tenants", "kueue", "jobset", "queues"}
    assert all(r.provider.startswith(provider.urn) for r in in_cluster)
    assert provider.inputs["enableServerSideApply"] in (True, "true")  # provider config travels as text


def test_kubeconfig_uses_the_auth_plugin_and_pools_come_first(stack_plan: Plan) -> None:
    provider = stack_plan.one("pulumi:providers:kubernetes")
    secret = provider.inputs["kubeconfig"]
    assert secret[rpc._special_sig_key] == rpc._special_secret_sig  # handed over as a secret, never in clear
    kubeconfig = yaml.safe_load(secret["value"])
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    pools = {r.urn for r in stack_plan.of_type("gcp:container/nodePool:NodePool")}
    assert pools and pools <= set(provider.dependencies)


def test_crds_before_the_operator_before_tenants(stack_plan: Plan) -> None:
    group = groups(stack_plan)
    assert group["crds"].urn in group["system"].dependencies
    assert group["system"].urn in group["tenants"].dependencies
    assert {o["metadata"]["name"] for o in group["crds"].inputs["objs"]} == {
        "datasets.modelplane.dev", "models.modelplane.dev", "modelservers.modelplane.dev", "notebooks.modelplane.dev",
        "modelversions.modelplane.dev"}


def test_operator_config_carries_the_infra_outputs(stack_plan: Plan) -> None:
    (config_map,) = objects(stack_plan, "system", "ConfigMap")
    data = config_map["data"]
    outputs = stack_plan.outputs
    assert data["MODELPLANE_BUCKET"] == outputs["bucket"] and data["MODELPLANE_REGISTRY"] == outputs["registry"]
    assert data["MODELPLANE_NAMESPACES"] == ",".join(outputs["tenants"])
    assert {"MODELPLANE_SERVER_IMAGE", "MODELPLANE_NOTEBOOK_IMAGE", "MODELPLANE_BUILDER_IMAGE"} <= set(data)
    # The capture sidecar's and the monitor's image, built beside the operator's (offline: its immutable tag).
    assert data["MODELPLANE_RUNTIME_IMAGE"] == outputs["runtimeImage"] == (
        f"{outputs['registry']}/modelplane-runtime:{source_tag()}")
    (account,) = objects(stack_plan, "system", "ServiceAccount")
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == outputs["operatorServiceAccount"]


def test_operator_deployment_is_hardened(stack_plan: Plan) -> None:
    (deployment,) = objects(stack_plan, "system", "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    # Built from this checkout; `pulumi up` names it by digest, offline by its immutable tag.
    assert container["image"] == stack_plan.outputs["operatorImage"]
    assert container["image"] == f"{stack_plan.outputs['registry']}/modelplane-operator:{source_tag()}"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["memory"]
    assert container["envFrom"] == [{"configMapRef": {"name": "modelplane-operator"}}]


def test_operator_rbac_is_scoped_to_the_tenants_and_the_build_namespace(stack_plan: Plan) -> None:
    everything = [o for group in groups(stack_plan).values() for o in group.inputs["objs"]]
    assert not [o for o in everything if o["kind"] == "ClusterRoleBinding"]  # nothing cluster-wide
    bindings = {o["metadata"]["namespace"]: o for o in everything if o["kind"] == "RoleBinding"}
    assert set(bindings) == {*stack_plan.outputs["tenants"], "modelplane-builds"}
    roles = {o["metadata"]["namespace"]: o["rules"] for o in everything if o["kind"] == "Role"}
    assert set(roles) == set(bindings)
    assert roles["modelplane-builds"] == rules(Scope.BUILD)
    assert all(roles[tenant] == rules(Scope.TENANT) for tenant in stack_plan.outputs["tenants"])
    # The tenants' Roles come with the tenants, the build namespace's with the system.
    assert {o["metadata"]["namespace"] for o in objects(stack_plan, "tenants", "Role")} == set(
        stack_plan.outputs["tenants"])


def test_builds_have_a_namespace_of_their_own_that_tenants_cannot_reach(stack_plan: Plan) -> None:
    namespaces = {o["metadata"]["name"]: o["metadata"]["labels"] for o in objects(stack_plan, "system", "Namespace")}
    assert namespaces["modelplane-builds"]["pod-security.kubernetes.io/enforce"] == "baseline"
    everything = [o for group in groups(stack_plan).values() for o in group.inputs["objs"]]
    # Tenants have no grant in the build namespace: every subject bound there is the operator's service account.
    subjects = [s for o in everything if o["kind"].endswith("Binding")
                and o["metadata"].get("namespace") == "modelplane-builds" for s in o["subjects"]]
    assert subjects and all(s == OPERATOR_SUBJECT for s in subjects)
    policies = {o["metadata"]["namespace"]: o for o in objects(stack_plan, "system", "NetworkPolicy")}
    policy = policies["modelplane-builds"]
    assert policy["spec"]["ingress"] == []
    peers = [peer for rule in policy["spec"]["egress"] for peer in rule["to"]]
    assert {"podSelector": {}} not in peers  # not even other builds
    internet = [p["ipBlock"] for p in peers if p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0"]
    assert internet and "10.0.0.0/8" in internet[0]["except"]
    (config_map,) = objects(stack_plan, "system", "ConfigMap")
    assert config_map["data"]["MODELPLANE_BUILD_NAMESPACE"] == "modelplane-builds"
    # The operator's Role there reaches build Jobs, their pods and events.
    (role,) = [r for r in objects(stack_plan, "system", "Role") if r["metadata"]["namespace"] == "modelplane-builds"]
    verbs: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for resource in rule["resources"]:
            verbs.setdefault((rule["apiGroups"][0], resource), set()).update(rule["verbs"])
    assert {"create", "get", "list", "watch"} <= verbs["batch", "jobs"]
    assert "list" in verbs["", "pods"] and "list" in verbs["", "events"]


def test_tenants_get_namespaces_accounts_policies_and_user_roles(prod_plan: Plan) -> None:
    tenants = prod_plan.outputs["tenants"]
    assert {o["metadata"]["name"] for o in objects(prod_plan, "tenants", "Namespace")} == set(tenants)
    policies = {o["metadata"]["namespace"]: o for o in objects(prod_plan, "tenants", "NetworkPolicy")
                if o["metadata"]["name"] == "modelplane-default-deny"}
    assert set(policies) == set(tenants)
    egress = policies[tenants[0]]["spec"]["egress"]
    assert any(p.get("port") == 53 for rule in egress for p in rule.get("ports", []))
    assert any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for rule in egress for peer in rule["to"])
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in
                objects(prod_plan, "tenants", "ServiceAccount")}
    assert accounts == {*((t, "modelplane-workload") for t in tenants),
                        *(("modelplane-builds", f"builder-{t}") for t in tenants)}
    builders = {o["metadata"]["name"]: o["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
                for o in objects(prod_plan, "tenants", "ServiceAccount") if o["metadata"]["name"].startswith("b")}
    assert builders == {f"builder-{t}": prod_plan.outputs["builderServiceAccounts"][t] for t in tenants}
    roles = {r["metadata"]["name"]: r["metadata"]["labels"] for r in objects(prod_plan, "system", "ClusterRole")}
    assert roles["modelplane-edit"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert roles["modelplane-view"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"


def test_kueue_is_the_pinned_release_and_its_queues_wait_for_it_and_the_tenants(stack_plan: Plan) -> None:
    """Offline, the release is named by its URL and never fetched; `pulumi up`'s provider reads it."""
    release = stack_plan.one("kubernetes:yaml/v2:ConfigFile", "kueue")
    assert release.inputs["file"] == KUEUE_MANIFESTS
    assert "/releases/download/v0.19.2/" in KUEUE_MANIFESTS
    # JobSet, for multi-node training, from the release whose API the operator writes.
    jobset = stack_plan.one("kubernetes:yaml/v2:ConfigFile", "jobset")
    assert jobset.inputs["file"] == JOBSET_MANIFESTS and jobset.urn in release.dependencies
    assert JOBSET_MANIFESTS.endswith("/jobset/releases/download/v0.12.0/manifests.yaml")
    group = groups(stack_plan)
    assert {release.urn, group["tenants"].urn} <= set(group["queues"].dependencies)
    # The tenants' GPU quota is Kueue's: no ResourceQuota beside it, which would refuse pods of admitted Jobs.
    assert not [o for g in group.values() for o in g.inputs["objs"] if o["kind"] == "ResourceQuota"]


def test_render_writes_what_the_stack_applies(stack_plan: Plan, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Compared as text, where `1` and `1.0` differ (as dicts, `1 == 1.0`)."""
    assert main(["render", "--stack", stack_plan.stack, "--out", str(tmp_path)]) == 0
    config = parse_stack_config({k.split(":", 1)[1]: v for k, v in read_stack_values(stack_plan.stack).items()},
                                stack_plan.stack)
    source = {**all_manifests(platform_facts(config, stack_plan.outputs)), "queues": queues(config)}
    planned = {name: group.inputs["objs"] for name, group in groups(stack_plan).items()}
    assert list(source) == ["crds", "system", "tenants", "queues"] and set(planned) == set(source)
    for index, name in enumerate(source):
        expected = manifests_yaml(source[name])
        assert (tmp_path / f"{index}0-{name}.yaml").read_text() == expected
        assert manifests_yaml(planned[name]) == expected
    kustomization = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())
    # The releases first, in install order, by the URLs `pulumi up` applies (Argo CD and Flux fetch them), then the
    # stack's files.
    assert kustomization["resources"] == [JOBSET_MANIFESTS, KUEUE_MANIFESTS, "00-crds.yaml", "10-system.yaml",
                                          "20-tenants.yaml", "30-queues.yaml"]
    assert "wrote" in capsys.readouterr().out


def test_rendered_manifests_are_valid_kubernetes(stack_plan: Plan) -> None:
    """Built-in kinds against the API's schemas; managed Prometheus' PodMonitorings and Kueue's objects against their
    CRDs' rules."""
    for group in groups(stack_plan).values():
        for obj in group.inputs["objs"]:
            if obj["apiVersion"] == podmonitoring.API_VERSION:
                assert podmonitoring.problems(obj) == []
            elif obj["apiVersion"] == kueue.API_VERSION:
                assert kueue.problems(obj) == []
            else:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_operator_reads_back_the_facts_the_stack_writes(stack_plan: Plan) -> None:
    """The contract between the halves, as a round trip: the planned ConfigMap, read as the operator reads it,
    gives the facts the stack meant, and writing those facts again gives the same variables."""
    (config,) = objects(stack_plan, "system", "ConfigMap")
    facts = ClusterFacts.from_env(config["data"])
    outputs = stack_plan.outputs
    values = read_stack_values(stack_plan.stack)
    assert (facts.project, facts.bucket, facts.registry) == (
        values["modelplane:project"], outputs["bucket"], outputs["registry"])
    # The pools as the stack file declares them (defaults as documented); the stack's output is their wire form.
    assert [(p.name, p.gpu_type, p.gpus_per_node, p.spot) for p in facts.gpu_pools] == [
        (p["name"], p["gpuType"], p.get("gpusPerNode", 1), p.get("spot", True)) for p in values["modelplane:gpuPools"]]
    assert [pool.to_wire() for pool in facts.gpu_pools] == outputs["gpuPools"]
    assert facts.to_env().items() <= config["data"].items()
    assert set(config["data"]) - set(facts.to_env()) == {"MODELPLANE_NAMESPACES", "GOOGLE_CLOUD_PROJECT"}
