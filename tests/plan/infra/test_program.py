"""The inputs `pulumi up` would send, asserted for both checked-in stacks (the real __main__.py under mocks)."""

import json
import re
from typing import Any

import yaml

from infra.offline import Plan, PlannedResource

PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}


def cluster(plan: Plan) -> dict[str, Any]:
    return plan.one("gcp:container/cluster:Cluster").inputs


def pools(plan: Plan) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in plan.of_type("gcp:container/nodePool:NodePool")}


def gpu_pools(plan: Plan) -> dict[str, dict[str, Any]]:
    return {name: pool for name, pool in pools(plan).items() if name not in ("system", "builds")}


def iam_members(plan: Plan) -> list[PlannedResource]:
    return [r for r in plan.resources if "IAMMember" in r.type or "IamMember" in r.type]


def test_cluster_is_hardened(stack_plan: Plan) -> None:
    c = cluster(stack_plan)
    assert c["networkingMode"] == "VPC_NATIVE"
    assert c["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}
    assert c["privateClusterConfig"]["enablePrivateNodes"] is True
    assert c["workloadIdentityConfig"]["workloadPool"] == f"{stack_plan.outputs['workloadPool']}"
    assert c["workloadIdentityConfig"]["workloadPool"].endswith(".svc.id.goog")
    assert c["addonsConfig"]["gcsFuseCsiDriverConfig"] == {"enabled": True}
    assert c["datapathProvider"] == "ADVANCED_DATAPATH"
    assert "networkPolicy" not in c  # Dataplane V2 enforces policy; the Calico addon must stay off
    assert c["enableShieldedNodes"] is True and c["enableLegacyAbac"] is False
    assert c["masterAuth"]["clientCertificateConfig"]["issueClientCertificate"] is False
    assert c["removeDefaultNodePool"] is True
    assert c["nodeConfig"]["serviceAccount"] == stack_plan.outputs["nodeServiceAccount"]
    assert c["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert set(c["loggingConfig"]["enableComponents"]) == {"SYSTEM_COMPONENTS", "WORKLOADS"}
    assert c["monitoringConfig"]["managedPrometheus"] == {"enabled": True}
    assert "DCGM" in c["monitoringConfig"]["enableComponents"]  # GPU metrics
    assert c["maintenancePolicy"]["recurringWindow"]["recurrence"].startswith("FREQ=WEEKLY")
    assert c["masterAuthorizedNetworksConfig"]["gcpPublicCidrsAccessEnabled"] is False
    assert c["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["allowExternalTraffic"] is True


def test_release_channel_and_protection_follow_the_stack(dev_plan: Plan, prod_plan: Plan) -> None:
    assert cluster(dev_plan)["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster(prod_plan)["releaseChannel"] == {"channel": "STABLE"}
    assert cluster(dev_plan)["deletionProtection"] is False
    assert dev_plan.one("gcp:container/cluster:Cluster").protect is False
    assert cluster(prod_plan)["deletionProtection"] is True
    assert prod_plan.one("gcp:container/cluster:Cluster").protect is True
    networks = cluster(prod_plan)["masterAuthorizedNetworksConfig"]["cidrBlocks"]
    assert {n["cidrBlock"] for n in networks} == {"203.0.113.0/24", "198.51.100.0/28"}


def test_dev_gpu_pools_are_spot_l4_and_a100_from_zero(dev_plan: Plan) -> None:
    gpus = gpu_pools(dev_plan)
    assert set(gpus) == {"l4", "a100"}
    l4, a100 = gpus["l4"], gpus["a100"]
    assert l4["nodeConfig"]["machineType"] == "g2-standard-8"
    assert a100["nodeConfig"]["machineType"] == "a2-highgpu-1g"
    assert [(g["type"], g["count"]) for g in l4["nodeConfig"]["guestAccelerators"]] == [("nvidia-l4", 1)]
    assert [(g["type"], g["count"]) for g in a100["nodeConfig"]["guestAccelerators"]] == [("nvidia-tesla-a100", 1)]
    assert (l4["autoscaling"]["totalMinNodeCount"], l4["autoscaling"]["totalMaxNodeCount"]) == (0, 2)
    assert (a100["autoscaling"]["totalMinNodeCount"], a100["autoscaling"]["totalMaxNodeCount"]) == (0, 1)
    assert l4["nodeConfig"]["spot"] is True and a100["nodeConfig"]["spot"] is True


def test_prod_gpu_pools_are_on_demand_l4_and_a100_80gb(prod_plan: Plan) -> None:
    gpus = gpu_pools(prod_plan)
    assert {name: (p["nodeConfig"]["machineType"], p["nodeConfig"]["guestAccelerators"][0]["type"],
                   p["nodeConfig"]["spot"]) for name, p in gpus.items()} == {
        "l4": ("g2-standard-16", "nvidia-l4", False),
        "a100-80": ("a2-ultragpu-1g", "nvidia-a100-80gb", False),
    }
    assert gpus["l4"]["nodeConfig"]["ephemeralStorageLocalSsdConfig"] == {"localSsdCount": 1}
    assert "ephemeralStorageLocalSsdConfig" not in gpus["a100-80"]["nodeConfig"]
    assert gpus["a100-80"]["nodeLocations"] == ["us-central1-a", "us-central1-c"]
    assert gpus["a100-80"]["nodeConfig"]["diskType"] == "pd-ssd"


def test_every_gpu_pool_scales_from_zero_with_managed_drivers(stack_plan: Plan) -> None:
    for name, pool in gpu_pools(stack_plan).items():
        node = pool["nodeConfig"]
        assert pool["initialNodeCount"] == 0 and pool["autoscaling"]["totalMinNodeCount"] == 0
        assert pool["autoscaling"]["locationPolicy"] == "ANY"
        assert node["guestAccelerators"][0]["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
        assert node["labels"] == {"modelplane.dev/gpu-pool": name}
        assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in node["taints"]
        spot_taint = {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NO_SCHEDULE"}
        assert (spot_taint in node["taints"]) == node["spot"]
        assert node["gcfsConfig"] == {"enabled": True}
        assert node["imageType"] == "COS_CONTAINERD"


def test_every_pool_is_hardened_and_ignores_autoscaler_drift(stack_plan: Plan) -> None:
    for resource in stack_plan.of_type("gcp:container/nodePool:NodePool"):
        node = resource.inputs["nodeConfig"]
        assert node["serviceAccount"] == stack_plan.outputs["nodeServiceAccount"]
        assert not node["serviceAccount"].endswith("-compute@developer.gserviceaccount.com")
        assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert node["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
        assert node["metadata"] == {"disable-legacy-endpoints": "true"}
        assert node["kubeletConfig"] == {"insecureKubeletReadonlyPortEnabled": "FALSE"}
        assert resource.inputs["management"] == {"autoRepair": True, "autoUpgrade": True}
        assert "initialNodeCount" in resource.ignore_changes
        assert resource.inputs["cluster"] == "cluster-id"


def test_system_pool_follows_config(prod_plan: Plan) -> None:
    system = pools(prod_plan)["system"]
    assert system["nodeConfig"]["machineType"] == "e2-standard-8"
    assert (system["autoscaling"]["totalMinNodeCount"], system["autoscaling"]["totalMaxNodeCount"]) == (2, 6)
    assert "guestAccelerators" not in system["nodeConfig"]


def test_builds_get_a_gvisor_pool_of_their_own_from_zero(stack_plan: Plan) -> None:
    """GKE Sandbox nodes that only builds select and tolerate; the system pool stays a non-sandbox pool."""
    builds, system = pools(stack_plan)["builds"], pools(stack_plan)["system"]
    node = builds["nodeConfig"]
    assert node["sandboxConfig"] == {"sandboxType": "gvisor"} and node["imageType"] == "COS_CONTAINERD"
    assert node["labels"] == {"modelplane.dev/build-pool": "builds"}
    assert node["taints"] == [{"key": "modelplane.dev/builds", "value": "builds", "effect": "NO_SCHEDULE"}]
    assert builds["initialNodeCount"] == 0 and builds["autoscaling"]["totalMinNodeCount"] == 0
    assert (builds["autoscaling"]["totalMaxNodeCount"], node["machineType"]) == (2, "e2-standard-4")
    assert "sandboxConfig" not in system["nodeConfig"] and "guestAccelerators" not in node


def test_artifacts_bucket_keeps_data(stack_plan: Plan) -> None:
    bucket = stack_plan.one("gcp:storage/bucket:Bucket", "artifacts")
    b = bucket.inputs
    assert b["uniformBucketLevelAccess"] is True
    assert b["publicAccessPrevention"] == "enforced"
    assert b["versioning"] == {"enabled": True}
    assert b["softDeletePolicy"]["retentionDurationSeconds"] >= 7 * 86400
    assert b["forceDestroy"] is False
    uploads = [rule for rule in b["lifecycleRules"] if rule["condition"].get("matchesPrefixes") == ["uploads/"]]
    assert len(uploads) == 1 and uploads[0]["action"] == {"type": "Delete"}
    assert b["name"] == stack_plan.outputs["bucket"]


def test_protection_of_data_follows_deletion_protection(dev_plan: Plan, prod_plan: Plan) -> None:
    kept = ("gcp:storage/bucket:Bucket", "gcp:artifactregistry/repository:Repository",
            "gcp:container/cluster:Cluster")
    # The operator build's staging bucket holds sources for a week, never data: it is not kept.
    def data(plan: Plan, type_: str) -> list[PlannedResource]:
        return [r for r in plan.of_type(type_) if r.name != "operator-image-source"]
    assert all(r.protect for t in kept for r in data(prod_plan, t))
    assert not any(r.protect for t in kept for r in data(dev_plan, t))
    uploads = prod_plan.one("gcp:storage/bucket:Bucket", "artifacts").inputs["lifecycleRules"][0]["condition"]
    assert uploads["age"] == 7


def test_registry_is_docker_with_cleanup(stack_plan: Plan) -> None:
    repositories = stack_plan.of_type("gcp:artifactregistry/repository:Repository")
    assert {r.name for r in repositories} == {"registry", *(f"registry-{t}" for t in stack_plan.outputs["tenants"])}
    for repository in repositories:
        repo = repository.inputs
        assert repo["format"] == "DOCKER"
        actions = {policy["id"]: policy["action"] for policy in repo["cleanupPolicies"]}
        assert actions == {"keep-recent": "KEEP", "delete-untagged": "DELETE"}
        # Platform versions never move; tenants' branch tags and build caches must.
        assert repo["dockerConfig"] == {"immutableTags": repository.name == "registry"}
    assert re.fullmatch(r"us-central1-docker\.pkg\.dev/modelplane-(dev|prod)/modelplane-(dev|prod)",
                        stack_plan.outputs["registry"])


def test_no_keys_and_no_primitive_roles(stack_plan: Plan) -> None:
    assert not [r for r in stack_plan.resources if r.type == "gcp:serviceaccount/key:Key"]
    roles = {r.inputs["role"] for r in iam_members(stack_plan)}
    assert not roles & PRIMITIVE_ROLES
    assert not [role for role in roles if role.endswith((".admin", "storage.objectAdmin"))]


def test_node_account_has_only_logging_metrics_and_registry_read(stack_plan: Plan) -> None:
    node = f"serviceAccount:{stack_plan.outputs['nodeServiceAccount']}"
    roles = {r.inputs["role"] for r in iam_members(stack_plan) if r.inputs["member"] == node}
    assert roles == {"roles/logging.logWriter", "roles/monitoring.metricWriter",
                     "roles/stackdriver.resourceMetadata.writer", "roles/artifactregistry.reader"}


def test_operator_may_sign_its_own_urls_and_use_the_bucket(stack_plan: Plan) -> None:
    operator = f"serviceAccount:{stack_plan.outputs['operatorServiceAccount']}"
    grants = {(r.type, r.inputs["role"]) for r in iam_members(stack_plan) if r.inputs["member"] == operator}
    assert grants == {("gcp:serviceaccount/iAMMember:IAMMember", "roles/iam.serviceAccountTokenCreator"),
                      ("gcp:storage/bucketIAMMember:BucketIAMMember", "roles/storage.objectUser")}
    signs = stack_plan.one("gcp:serviceaccount/iAMMember:IAMMember", "sa-operator-signs").inputs
    assert signs["serviceAccountId"].endswith(stack_plan.outputs["operatorServiceAccount"])


def test_each_builder_pushes_to_its_tenants_repository_and_reads_its_uploads(stack_plan: Plan) -> None:
    for tenant, email in stack_plan.outputs["builderServiceAccounts"].items():
        grants = [r for r in iam_members(stack_plan) if r.inputs["member"] == f"serviceAccount:{email}"]
        assert {(r.type, r.inputs["role"]) for r in grants} == {
            ("gcp:artifactregistry/repositoryIamMember:RepositoryIamMember", "roles/artifactregistry.writer"),
            ("gcp:storage/bucketIAMMember:BucketIAMMember", "roles/storage.objectViewer")}
        (push,) = [r for r in grants if r.inputs["role"] == "roles/artifactregistry.writer"]
        assert push.parent == stack_plan.one("modelplane:infra:Registry", f"registry-{tenant}").urn


def test_kubernetes_service_accounts_impersonate_through_workload_identity(stack_plan: Plan) -> None:
    pool = stack_plan.outputs["workloadPool"]
    members = {r.inputs["member"] for r in stack_plan.of_type("gcp:serviceaccount/iAMMember:IAMMember")
               if r.inputs["role"] == "roles/iam.workloadIdentityUser"}
    tenants = stack_plan.outputs["tenants"]
    # Builders act in the build namespace, one KSA per tenant; no tenant namespace holds a builder identity.
    assert members == {f"serviceAccount:{pool}[modelplane-system/modelplane-operator]",
                       *(f"serviceAccount:{pool}[modelplane-builds/builder-{t}]" for t in tenants)}


def test_tenants_reach_only_their_own_prefix(stack_plan: Plan) -> None:
    bucket = stack_plan.outputs["bucket"]
    pool = stack_plan.outputs["workloadPool"]
    for tenant in stack_plan.outputs["tenants"]:
        grant = stack_plan.one("gcp:storage/bucketIAMMember:BucketIAMMember", f"artifacts-access-tenant-{tenant}")
        assert grant.inputs["member"] == (
            f"principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/{pool}"
            f"/subject/ns/{tenant}/sa/modelplane-workload")
        assert grant.inputs["role"] == "roles/storage.objectUser"
        expression = grant.inputs["condition"]["expression"]
        assert f'startsWith("projects/_/buckets/{bucket}/objects/{tenant}/")' in expression
        assert f'objectListPrefix", "").startsWith("{tenant}/")' in expression


def test_network_has_ranges_nat_and_private_google_access(stack_plan: Plan) -> None:
    subnet = stack_plan.one("gcp:compute/subnetwork:Subnetwork").inputs
    assert subnet["privateIpGoogleAccess"] is True
    assert {r["rangeName"] for r in subnet["secondaryIpRanges"]} == {"pods", "services"}
    nat = stack_plan.one("gcp:compute/routerNat:RouterNat").inputs
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    vpc = stack_plan.one("gcp:compute/network:Network").inputs
    assert vpc["autoCreateSubnetworks"] is False
    rules = {r.inputs["name"].rsplit("-", 2)[-2] + "-" + r.inputs["name"].rsplit("-", 1)[-1]: r.inputs
             for r in stack_plan.of_type("gcp:compute/firewall:Firewall")}
    assert set(rules) == {"allow-internal", "deny-ingress"}
    assert rules["deny-ingress"]["priority"] == 65534


def test_every_cloud_resource_uses_the_stack_provider_with_labels(stack_plan: Plan) -> None:
    provider = stack_plan.one("pulumi:providers:gcp")
    labels = provider.inputs["defaultLabels"]
    labels = json.loads(labels) if isinstance(labels, str) else labels
    assert labels["managed-by"] == "modelplane" and labels["modelplane-stack"] == stack_plan.stack
    assert labels["team"] == "ml-platform"
    for resource in stack_plan.resources:
        if resource.type.startswith("gcp:"):
            assert resource.provider.startswith(provider.urn), resource.name


def test_apis_are_enabled_before_resources_use_them(stack_plan: Plan) -> None:
    services = {r.urn for r in stack_plan.of_type("gcp:projects/service:Service")}
    assert {r.inputs["service"] for r in stack_plan.of_type("gcp:projects/service:Service")} >= {
        "container.googleapis.com", "storage.googleapis.com", "artifactregistry.googleapis.com",
        "iamcredentials.googleapis.com"}
    for component in ("modelplane:infra:Cluster", "modelplane:infra:ArtifactBucket", "modelplane:infra:Registry"):
        for resource in stack_plan.of_type(component):
            assert services <= set(resource.dependencies)


def test_outputs_and_kubeconfig_use_the_auth_plugin(stack_plan: Plan) -> None:
    assert {"clusterName", "endpoint", "kubeconfig", "bucket", "registry", "nodeServiceAccount",
            "operatorServiceAccount", "builderServiceAccounts", "operatorImage"} <= set(stack_plan.outputs)
    assert "kubeconfig" in stack_plan.secret_outputs
    config = yaml.safe_load(stack_plan.outputs["kubeconfig"])
    (user,) = config["users"]
    assert user["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert "token" not in user["user"] and "client-key-data" not in user["user"]
    assert config["clusters"][0]["cluster"]["server"] == f"https://{stack_plan.outputs['endpoint']}"
