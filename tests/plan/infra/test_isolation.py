"""Tenant isolation as Google Cloud and the cluster would enforce it, read from the plan and the render.

Each test asks an attacker's question of the planned IAM (evaluated by tests/support/iam.py, the Binary
Authorization allowlist by tests/support/binauthz.py) and uses the operator's own path and image functions, so the
two halves are checked against each other: what the operator writes is what IAM lets the right identity read.
"""

import re
from collections.abc import Iterator
from typing import Any

from infra.offline import Plan, run_program
from infra.operator_image import IMAGE_NAMES, source_tag
from modelplane.api.common import Build, GitSource
from modelplane.builders.build import build_job, image_ref
from modelplane.cluster import ClusterFacts
from modelplane.images import DIGEST_PINNED
from modelplane.layout import upload_object, uploads_prefix, workspace_prefix
from modelplane.meta import Owner
from tests.support.admission import review, selects
from tests.support.binauthz import admitted
from tests.support.iam import account, listing_access, object_access, workload
from tests.support.plans import rendered

MD5 = "0" * 32


def owner(tenant: str, kind: str = "Model", name: str = "m") -> Owner:
    return Owner(kind=kind, name=name, namespace=tenant, uid="u", generation=1)


def impersonators(plan: Plan) -> dict[str, set[str]]:
    """Google service account email -> the Kubernetes service accounts that may act as it."""
    found: dict[str, set[str]] = {}
    for binding in plan.of_type("gcp:serviceaccount/iAMMember:IAMMember"):
        if binding.inputs["role"] == "roles/iam.workloadIdentityUser":
            email = binding.inputs["serviceAccountId"].rsplit("/", 1)[1]
            found.setdefault(email, set()).add(re.sub(r"^serviceAccount:[^\[]+", "", binding.inputs["member"]))
    return found


def test_no_google_service_account_serves_two_tenants(prod_plan: Plan) -> None:
    tenants = prod_plan.outputs["tenants"]
    annotated = {o["metadata"]["name"]: o["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
                 for o in rendered(prod_plan) if o["kind"] == "ServiceAccount"
                 and o["metadata"]["namespace"] == "modelplane-builds"}
    assert len(set(annotated.values())) == len(tenants) == 2
    bound = impersonators(prod_plan)
    for tenant in tenants:
        # The KSA a tenant's builds run as acts as a Google account that no other KSA may act as.
        assert bound[annotated[f"builder-{tenant}"]] == {f"[modelplane-builds/builder-{tenant}]"}
    assert bound[prod_plan.outputs["operatorServiceAccount"]] == {"[modelplane-system/modelplane-operator]"}


def test_no_tenant_identity_can_write_where_the_operator_image_lives(stack_plan: Plan) -> None:
    registry = stack_plan.outputs["registry"]
    assert stack_plan.outputs["operatorImage"].startswith(f"{registry}/modelplane-operator")
    platform = stack_plan.one("modelplane:infra:Registry", "registry").urn
    platform_grants = [r.inputs for r in stack_plan.of_type(
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember") if r.parent == platform]
    # Nodes pull; only the release account, which builds the operator with Cloud Build, may push.
    release = account(stack_plan.outputs["releaseServiceAccount"])
    assert sorted((g["role"], g["member"]) for g in platform_grants) == [
        ("roles/artifactregistry.reader", account(stack_plan.outputs["nodeServiceAccount"])),
        ("roles/artifactregistry.writer", release)]
    # No Kubernetes service account may act as the release account, so no pod, a tenant's or the platform's, can.
    assert release.removeprefix("serviceAccount:") not in impersonators(stack_plan)
    # Tenant workloads and members hold no registry role at all.
    members = {r.inputs["member"] for r in stack_plan.resources if "member" in r.inputs and "artifactregistry" in
               r.inputs.get("role", "")}
    assert not {workload(stack_plan, t) for t in stack_plan.outputs["tenants"]} & members
    assert not {m for m in members if m.startswith(("user:", "group:"))}


def test_a_tenant_reads_only_its_own_uploads(prod_plan: Plan) -> None:
    operator = account(prod_plan.outputs["operatorServiceAccount"])
    builders = {t: account(e) for t, e in prod_plan.outputs["builderServiceAccounts"].items()}
    for tenant in prod_plan.outputs["tenants"]:
        upload = upload_object(owner(tenant), MD5)  # where the operator tells the CLI to upload
        assert object_access(prod_plan, upload) == {operator, builders[tenant]}
        assert object_access(prod_plan, upload, write=True) == {operator}
        assert listing_access(prod_plan, uploads_prefix(tenant)) == {operator, builders[tenant]}
    assert listing_access(prod_plan, "uploads/") == {operator}  # no builder lists every tenant's uploads


def test_a_prefix_grant_does_not_reach_a_tenant_whose_name_extends_it(dev_values: dict[str, Any]) -> None:
    """`uploads/ml` is a prefix of `uploads/ml-research/`: the grants end in `/`, so neither reaches the other."""
    plan = run_program("dev", {**dev_values, "modelplane:tenants": ["ml", "ml-research"]})
    builders = {t: account(e) for t, e in plan.outputs["builderServiceAccounts"].items()}
    research_upload = upload_object(owner("ml-research"), MD5)
    assert builders["ml"] not in object_access(plan, research_upload)
    assert workload(plan, "ml") not in object_access(plan, "ml-research/models/m/model.safetensors")
    assert workload(plan, "ml") in object_access(plan, "ml/models/m/model.safetensors", write=True)


def test_members_reach_their_namespace_and_their_notebook_workspaces_only(prod_plan: Plan) -> None:
    bindings = {o["metadata"]["namespace"]: o for o in rendered(prod_plan)
                if o["kind"] == "RoleBinding" and o["metadata"]["name"] == "modelplane-members"}
    assert set(bindings) == {"research", "product-ml"}
    assert bindings["research"]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                               "name": "edit"}
    assert [(s["kind"], s["name"]) for s in bindings["product-ml"]["subjects"]] == [
        ("Group", "product-ml@example.com"), ("User", "oncall-ml@example.com")]
    research = "group:ml-research@example.com"
    workspace = workspace_prefix(owner("research", "Notebook", "nb"))  # what `kubectl notebook` syncs
    assert research in object_access(prod_plan, f"{workspace}train.ipynb", write=True)
    assert research in listing_access(prod_plan, workspace)
    assert research not in object_access(prod_plan, "research/models/m/model.safetensors")
    assert research not in object_access(prod_plan, f"{workspace_prefix(owner('product-ml', 'Notebook'))}x")
    viewers = {r.inputs["member"]: r.inputs["role"] for r in prod_plan.of_type("gcp:projects/iAMMember:IAMMember")
               if r.inputs["member"].startswith(("user:", "group:"))}
    assert viewers == {m: "roles/container.clusterViewer" for m in (
        research, "group:product-ml@example.com", "user:oncall-ml@example.com")}


def _pod_images(manifest: dict[str, Any]) -> Iterator[str]:
    spec = manifest.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) or spec.get("jobTemplate", {}).get("spec", {}).get(
        "template", {}).get("spec", {})
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        yield container["image"]


def platform_images(plan: Plan) -> list[str]:
    """Every image the platform runs: the rendered pods, the images the operator is configured with, and the build
    Job it makes from that configuration (read back as the operator reads it)."""
    objects = rendered(plan)
    (config,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "modelplane-operator"]
    cluster = ClusterFacts.from_env(config["data"])
    build = Build(git=GitSource(url="https://github.com/org/repo", ref="main"))
    job = build_job(owner("ml"), build, "x", cluster)
    return [*(i for o in objects for i in _pod_images(o)), cluster.server_image, cluster.notebook_image,
            cluster.runtime_image, *_pod_images(job)]


def test_every_image_the_platform_runs_is_pinned_by_digest(stack_plan: Plan) -> None:
    """Offline, the images built from this checkout are named by their tag: there is no registry to read the digest
    from (`pulumi up` reads it), and the tag is as fixed as a digest, since the platform repository's tags are
    immutable."""
    images = platform_images(stack_plan)
    assert len(set(images)) == 6  # operator, runtime, server, notebook, builder, cloud SDK (build helpers)
    built = {f"{stack_plan.outputs['registry']}/{name}:{source_tag()}" for name in IMAGE_NAMES}
    assert stack_plan.one("gcp:artifactregistry/repository:Repository", "registry").inputs["dockerConfig"] == {
        "immutableTags": True}
    assert [i for i in images if not re.search(DIGEST_PINNED, i) and i not in built] == []


def test_prod_encrypts_secrets_with_its_own_key(prod_plan: Plan, dev_plan: Plan) -> None:
    cluster = prod_plan.one("gcp:container/cluster:Cluster")
    assert cluster.inputs["databaseEncryption"]["state"] == "ENCRYPTED"
    key = prod_plan.one("gcp:kms/cryptoKey:CryptoKey")
    assert key.protect and key.inputs["rotationPeriod"] == f"{90 * 86400}s"
    grant = prod_plan.one("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    agent = "service-123456789012@container-engine-robot.iam.gserviceaccount.com"  # GKE's service agent
    assert grant.inputs["member"] == f"serviceAccount:{agent}"
    assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grant.urn in cluster.dependencies  # GKE refuses a key its agent cannot use yet
    assert "databaseEncryption" not in dev_plan.one("gcp:container/cluster:Cluster").inputs


def test_binary_authorization_admits_what_the_platform_runs_and_nothing_else(stack_plan: Plan) -> None:
    policy = stack_plan.one("gcp:binaryauthorization/policy:Policy").inputs
    assert policy["globalPolicyEvaluationMode"] == "ENABLE"
    mode = {"dev": "DRYRUN_AUDIT_LOG_ONLY", "prod": "ENFORCED_BLOCK_AND_AUDIT_LOG"}[stack_plan.stack]
    assert policy["defaultAdmissionRule"] == {"evaluationMode": "ALWAYS_DENY", "enforcementMode": mode}
    cluster = stack_plan.one("gcp:container/cluster:Cluster").inputs
    assert cluster["binaryAuthorization"] == {"evaluationMode": "PROJECT_SINGLETON_POLICY_ENFORCE"}
    patterns = [p["namePattern"] for p in policy["admissionWhitelistPatterns"]]
    registry = stack_plan.outputs["registry"]
    for image in platform_images(stack_plan):
        assert admitted(patterns, image), image
    tenant = stack_plan.outputs["tenants"][0]
    assert admitted(patterns, f"{registry}-{tenant}/model-m:main")  # what the tenant's builds push
    assert not admitted(patterns, "docker.io/library/nginx:latest")
    assert not admitted(patterns, "docker.io/vllm/vllm-openai-fork:v1")  # the pinned image's name, extended
    assert not admitted(patterns, f"{registry}-{tenant}-x/model-m:main")
    assert not admitted(patterns, "us-central1-docker.pkg.dev/someone-else/images/miner:1")


def _pod(*images: str, init: str | None = None, ephemeral: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}
    if init:
        spec["initContainers"] = [{"name": "init", "image": init}]
    if ephemeral:
        spec["ephemeralContainers"] = [{"name": "debug", "image": ephemeral}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def tenant_admission(plan: Plan) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The tenants' image policy and the namespaces it binds to (checked against the binding's selector)."""
    objects = rendered(plan)
    (policy,) = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    namespaces = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Namespace"}
    assert {n for n, ns in namespaces.items() if selects(binding, ns)} == set(plan.outputs["tenants"])
    return policy, namespaces


def test_the_api_server_keeps_a_tenant_off_other_repositories(prod_plan: Plan) -> None:
    """A member with `edit` creates pods directly, past the operator: the admission policy must refuse them."""
    policy, namespaces = tenant_admission(prod_plan)
    registry, research = prod_plan.outputs["registry"], namespaces["research"]
    built = image_ref(ClusterFacts(project="p", bucket="b", registry=registry), owner("research"),
                      Build(git=GitSource(url="https://github.com/org/repo", ref="main")))
    assert review(policy, _pod(built, "docker.io/library/python:3.12"), research) is None
    refused = review(policy, _pod(f"{registry}-product-ml/model-m:main"), research)
    assert refused and f"{registry}-product-ml/model-m:main" in refused and f"{registry}-research/" in refused
    assert review(policy, _pod("docker.io/library/python:3.12", init=prod_plan.outputs["operatorImage"]), research)
    assert review(policy, _pod(f"{registry}-research-x/model-m:main"), research)  # a name that extends the tenant's


DIGEST, OTHER_DIGEST = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def test_of_the_platforms_images_tenant_pods_run_exactly_the_runtime(dev_values: dict[str, Any],
                                                                       dev_plan: Plan) -> None:
    """The runtime image as `pulumi up` names it (by digest) runs in a tenant namespace, as the operator's sidecar or
    a member's own pod; no other name of it, no other digest, and no other platform image does."""
    registry = dev_plan.outputs["registry"]
    runtime = f"{registry}/modelplane-runtime@{DIGEST}"
    plan = run_program("dev", {**dev_values, "modelplane:images": {
        "operator": f"{registry}/modelplane-operator@{DIGEST}", "runtime": runtime}})
    policy, namespaces = tenant_admission(plan)
    (config,) = [o for o in rendered(plan) if o["kind"] == "ConfigMap"]
    assert ClusterFacts.from_env(config["data"]).runtime_image == runtime  # what the operator puts in tenant pods
    ml = namespaces["ml"]
    assert review(policy, _pod("docker.io/vllm/vllm-openai:v0.11.0", runtime), ml) is None
    assert review(policy, _pod(runtime), ml) is None
    for image in (f"{registry}/modelplane-runtime@{OTHER_DIGEST}", f"{registry}/modelplane-runtime:0.1.0",
                  f"{registry}/modelplane-runtime:0.1.0@{DIGEST}", f"{registry}/modelplane-runtime-x@{DIGEST}",
                  f"{registry}/modelplane-operator@{DIGEST}", f"{registry}/other@{DIGEST}",
                  f"{registry}-ml-x/modelplane-runtime@{DIGEST}"):
        refused = review(policy, _pod(runtime, init=image), ml)
        assert refused and image in refused, image


def test_an_update_is_judged_on_the_images_it_brings(prod_plan: Plan) -> None:
    """A pod admitted with the runtime image of an earlier release is updated by controllers after the stack moved
    on (the Job controller removes its tracking finalizer): the image it already runs is not judged again. An update
    that brings a platform or foreign image in is."""
    policy, namespaces = tenant_admission(prod_plan)
    registry, research = prod_plan.outputs["registry"], namespaces["research"]
    earlier = f"{registry}/modelplane-runtime@{OTHER_DIGEST}"
    running = _pod("docker.io/library/python:3.12", earlier)
    assert review(policy, running, research)  # not as a new pod
    released = {**running, "metadata": {"name": "p", "finalizers": []}}
    assert review(policy, released, research, old=running) is None
    swapped = _pod("docker.io/library/python:3.12", prod_plan.outputs["operatorImage"])
    assert review(policy, swapped, research, old=running)
    debugged = _pod("docker.io/library/python:3.12", earlier, ephemeral=f"{registry}-product-ml/debug:1")
    assert review(policy, debugged, research, old=running)


def test_binary_authorization_admits_a_pinned_pair_outside_the_platform_repository(dev_values: dict[str, Any]) -> None:
    operator = f"ghcr.io/example/modelplane-operator:0.2.0@{DIGEST}"
    runtime = f"ghcr.io/example/modelplane-runtime:0.2.0@{DIGEST}"
    plan = run_program("dev", {**dev_values, "modelplane:images": {"operator": operator, "runtime": runtime}})
    patterns = [p["namePattern"] for p in plan.one("gcp:binaryauthorization/policy:Policy").inputs[
        "admissionWhitelistPatterns"]]
    assert admitted(patterns, operator) and admitted(patterns, runtime)
    assert not admitted(patterns, "ghcr.io/example/miner:1")
