"""Infra: the whole cloud side of one environment, composed from the components beside this module."""

import hashlib
import re
from functools import partial

import pulumi
from pulumi_gcp import organizations, projects
from pulumi_gcp.provider import Provider as GcpProvider

from infra.buckets.access import OBJECT_USER, OBJECT_VIEWER, BucketAccess, BucketAccessArgs, PrefixGrant
from infra.buckets.artifacts import ArtifactBucket, ArtifactBucketArgs
from infra.config import StackConfig
from infra.gke.binary_authorization import AdmissionPolicy, AdmissionPolicyArgs, allowlist
from infra.gke.cluster import Cluster, ClusterArgs
from infra.gke.encryption import SecretsKey, SecretsKeyArgs
from infra.gke.kubeconfig import kubeconfig
from infra.gke.node_pools import NodePools, NodePoolsArgs
from infra.identity import (
    ServiceAccounts,
    ServiceAccountsArgs,
    WorkloadIdentity,
    WorkloadIdentityArgs,
    ksa_principal,
)
from infra.network import Network, NetworkArgs
from infra.operator_image import PlatformImages, PlatformImagesArgs, by_digest
from infra.queueing import JOBSET_IMAGE, KUEUE_IMAGE
from infra.registry import Registry, RegistryArgs
from modelplane.images import CLOUD_SDK_IMAGE, DIGEST_PINNED
from modelplane.layout import notebooks_prefix, tenant_prefix, uploads_prefix
from modelplane.names import WORKLOAD_KSA, tenant_repository

APIS = ("compute.googleapis.com", "container.googleapis.com", "storage.googleapis.com",
        "artifactregistry.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com",
        "logging.googleapis.com", "monitoring.googleapis.com", "cloudkms.googleapis.com",
        "binaryauthorization.googleapis.com", "cloudbuild.googleapis.com")
# What a tenant's member needs from the project to reach the cluster at all (get credentials, connect through the
# DNS endpoint); what they may do inside is Kubernetes RBAC (the namespace's `edit`, modelplane/deploy.py).
MEMBER_PROJECT_ROLE = "roles/container.clusterViewer"


def _tenant_principal(tenant: str, resolved: list[str]) -> str:
    project_number, workload_pool = resolved
    return ksa_principal(project_number, workload_pool, tenant, WORKLOAD_KSA)


def member_key(member: str) -> str:
    """A resource name for a member's grants that stays when other members are added or removed, and that no two
    members share (`user:a.b@x` and `user:a-b@x` differ in the digest)."""
    readable = re.sub(r"[^a-z0-9]+", "-", member.lower()).strip("-")[:40]
    return f"{readable}-{hashlib.sha256(member.encode()).hexdigest()[:6]}"


def _allowlist(images: list[str], extra: tuple[str, ...], repositories: list[str]) -> list[str]:
    return allowlist(repositories, images, extra)


def _kubeconfig(cluster_name: str, namespace: str, resolved: list[str | None]) -> str:
    server, ca_certificate = resolved
    return kubeconfig(cluster_name, f"https://{server}", ca_certificate, namespace)


class Infra(pulumi.ComponentResource):
    """Everything the platform needs from Google Cloud, wired so that no credential is ever stored."""

    outputs: dict[str, pulumi.Input[object]]
    node_pools: list[pulumi.Resource]

    def __init__(self, config: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:Infra", config.cluster_name, None, opts)
        c = config
        name = c.cluster_name
        provider = GcpProvider(
            "gcp", project=c.project, region=c.region,
            default_labels={**c.labels, "managed-by": "modelplane", "modelplane-stack": c.stack},
            opts=pulumi.ResourceOptions(parent=self))
        services = [
            projects.Service(api.split(".")[0], service=api, disable_on_destroy=False,
                                 opts=pulumi.ResourceOptions(parent=self, provider=provider))
            for api in APIS
        ]
        child = pulumi.ResourceOptions(parent=self, providers=[provider], depends_on=services)

        project_number = organizations.get_project_output(
            project_id=c.project, opts=pulumi.InvokeOutputOptions(parent=self, provider=provider)).number
        network = Network("network", NetworkArgs(name=name, region=c.region, ranges=c.network), child)
        accounts = ServiceAccounts("sa", ServiceAccountsArgs(prefix=name, project=c.project, tenants=c.tenant_names),
                                   child)
        secrets_key = SecretsKey("secrets", SecretsKeyArgs(name=name, region=c.region, project_number=project_number),
                                 child) if c.secrets_encryption else None
        cluster = Cluster("cluster", ClusterArgs(config=c, network=network.vpc.id, subnet=network.subnet.id,
                                                 node_service_account=accounts.nodes.email,
                                                 secrets_key=secrets_key), child)
        pools = NodePools("pools", NodePoolsArgs(config=c, cluster=cluster.cluster,
                                                 node_service_account=accounts.nodes.email), child)
        WorkloadIdentity("wi", WorkloadIdentityArgs(accounts=accounts, workload_pool=cluster.workload_pool), child)

        def registry(component: str, repository_id: str, description: str, pushers: list[pulumi.Input[str]],
                     immutable_tags: bool) -> Registry:
            return Registry(component, RegistryArgs(
                repository_id=repository_id, region=c.region, description=description, settings=c.registry,
                pullers=[accounts.nodes.member], pushers=pushers, immutable_tags=immutable_tags,
                protect=c.deletion_protection), child)

        platform_registry = registry("registry", name, "modelplane's own images (the operator and its runtime)",
                                     [accounts.release.member], True)
        tenant_registries = [
            registry(f"registry-{tenant}", tenant_repository(name, tenant), f"images built for tenant {tenant}",
                     [accounts.builders[tenant].member], False)
            for tenant in c.tenant_names]
        bucket = ArtifactBucket("artifacts", ArtifactBucketArgs(
            name=f"{c.project}-{name}-artifacts", settings=c.buckets, protect=c.deletion_protection), child)

        grants = []
        for tenant in c.tenants:
            workload = pulumi.Output.all(project_number, cluster.workload_pool).apply(
                partial(_tenant_principal, tenant.name))
            grants += [PrefixGrant(f"tenant-{tenant.name}", workload, OBJECT_USER, tenant_prefix(tenant.name)),
                       PrefixGrant(f"builder-{tenant.name}-uploads", accounts.builders[tenant.name].member,
                                   OBJECT_VIEWER, uploads_prefix(tenant.name))]
            grants += [PrefixGrant(f"member-{tenant.name}-{member_key(member)}", member, OBJECT_USER,
                                   notebooks_prefix(tenant.name)) for member in tenant.members]
        BucketAccess("artifacts-access", BucketAccessArgs(
            bucket=bucket.bucket.name, whole_bucket={"operator": accounts.operator.member}, prefix_grants=grants),
            child)
        for member in sorted({m for tenant in c.tenants for m in tenant.members}):
            projects.IAMMember(f"member-{member_key(member)}", project=c.project, role=MEMBER_PROJECT_ROLE,
                                   member=member, opts=child)
        if c.binary_authorization.mode != "off":
            # The images built here lie in the platform repository, which the allowlist holds already; Kueue's and
            # JobSet's controllers come from their release manifests (infra/queueing.py).
            images = [i for i in (c.images.operator, c.images.runtime, c.images.server, c.images.notebook,
                                  c.images.builder, CLOUD_SDK_IMAGE, KUEUE_IMAGE, JOBSET_IMAGE) if i]
            AdmissionPolicy("admission", AdmissionPolicyArgs(
                project=c.project, settings=c.binary_authorization,
                allow=pulumi.Output.all(platform_registry.url, *(r.url for r in tenant_registries)).apply(
                    partial(_allowlist, images, c.binary_authorization.allow))), child)

        dns_endpoint = cluster.cluster.control_plane_endpoints_config.dns_endpoint_config.endpoint
        server = dns_endpoint if c.dns_endpoint else cluster.cluster.endpoint
        ca = None if c.dns_endpoint else cluster.cluster.master_auth.cluster_ca_certificate
        kubeconfig_text: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(server, ca).apply(partial(_kubeconfig, name, c.tenant_names[0])))
        operator_image, runtime_image = self._platform_images(c, accounts, platform_registry, provider)
        self.outputs = {
            "clusterName": cluster.cluster.name,
            "endpoint": server,
            "kubeconfig": kubeconfig_text,
            "bucket": bucket.bucket.name,
            "registry": platform_registry.url,
            "operatorImage": operator_image,
            "runtimeImage": runtime_image,
            "workloadPool": cluster.workload_pool,
            "nodeServiceAccount": accounts.nodes.email,
            "operatorServiceAccount": accounts.operator.email,
            "releaseServiceAccount": accounts.release.email,
            "builderServiceAccounts": {tenant: account.email for tenant, account in accounts.builders.items()},
            "gpuPools": [pool.facts.to_wire() for pool in c.gpu_pools],  # as the operator reads them
            "tenants": list(c.tenant_names),
        }
        self.node_pools = [pools.system, pools.builds, *pools.gpu.values()]
        self.register_outputs(self.outputs)

    def _platform_images(self, c: StackConfig, accounts: ServiceAccounts, registry: Registry,
                         provider: GcpProvider) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The operator and runtime images by digest: built from this checkout by Cloud Build when not configured
        (infra/operator_image.py); else as configured (the config holds both or neither, the runtime pinned), the
        operator either pinned or a tag someone pushed to the platform repository, looked up at `pulumi up` as a
        built one is (its tags are immutable)."""
        if not c.images.operator:
            built = PlatformImages("operator-image", PlatformImagesArgs(
                project=c.project, region=c.region, bucket_name=f"{c.project}-{c.cluster_name}-src",
                repository=registry.repository, registry_url=registry.url, builder=accounts.release,
                provider=provider), pulumi.ResourceOptions(parent=self, providers=[provider]))
            return built.operator, built.runtime
        runtime = pulumi.Output.from_input(c.images.runtime)
        if re.search(DIGEST_PINNED, c.images.operator):
            return pulumi.Output.from_input(c.images.operator), runtime
        return by_digest(c.images.operator.rsplit("/", 1)[1], registry.repository, c.region, provider, self), runtime
