"""Infra: the whole cloud side of one environment, composed from the components beside this module."""

from functools import partial

import pulumi
import pulumi_gcp as gcp

from infra.buckets.access import BucketAccess, BucketAccessArgs, PrefixGrant, uploads_reader
from infra.buckets.artifacts import ArtifactBucket, ArtifactBucketArgs
from infra.config import StackConfig
from infra.gke.cluster import Cluster, ClusterArgs
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
from infra.registry import Registry, RegistryArgs
from modelplane.names import WORKLOAD_KSA

APIS = ("compute.googleapis.com", "container.googleapis.com", "storage.googleapis.com",
        "artifactregistry.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com",
        "logging.googleapis.com", "monitoring.googleapis.com")


def _tenant_principal(tenant: str, resolved: list[str]) -> str:
    project_number, workload_pool = resolved
    return ksa_principal(project_number, workload_pool, tenant, WORKLOAD_KSA)


def _kubeconfig(cluster_name: str, resolved: list[str | None]) -> str:
    server, ca_certificate = resolved
    return kubeconfig(cluster_name, f"https://{server}", ca_certificate)


class Infra(pulumi.ComponentResource):
    """Everything the platform needs from Google Cloud, wired so that no credential is ever stored."""

    outputs: dict[str, pulumi.Input[object]]
    node_pools: list[pulumi.Resource]

    def __init__(self, config: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:Infra", config.cluster_name, None, opts)
        c = config
        name = c.cluster_name
        provider = gcp.Provider(
            "gcp", project=c.project, region=c.region,
            default_labels={**c.labels, "managed-by": "modelplane", "modelplane-stack": c.stack},
            opts=pulumi.ResourceOptions(parent=self))
        services = [
            gcp.projects.Service(api.split(".")[0], service=api, disable_on_destroy=False,
                                 opts=pulumi.ResourceOptions(parent=self, provider=provider))
            for api in APIS
        ]
        child = pulumi.ResourceOptions(parent=self, providers=[provider], depends_on=services)

        network = Network("network", NetworkArgs(name=name, region=c.region, ranges=c.network), child)
        accounts = ServiceAccounts("sa", ServiceAccountsArgs(prefix=name, project=c.project), child)
        cluster = Cluster("cluster", ClusterArgs(config=c, network=network.vpc.id, subnet=network.subnet.id,
                                                 node_service_account=accounts.nodes.email), child)
        pools = NodePools("pools", NodePoolsArgs(config=c, cluster=cluster.cluster,
                                                 node_service_account=accounts.nodes.email), child)
        WorkloadIdentity("wi", WorkloadIdentityArgs(accounts=accounts, workload_pool=cluster.workload_pool,
                                                    tenants=c.tenants), child)
        registry = Registry("registry", RegistryArgs(
            name=name, region=c.region, settings=c.registry, protect=c.deletion_protection,
            pullers=[accounts.nodes.member], pushers=[accounts.builder.member]), child)
        bucket = ArtifactBucket("artifacts", ArtifactBucketArgs(
            name=f"{c.project}-{name}-artifacts", settings=c.buckets, protect=c.deletion_protection), child)

        project_number = gcp.organizations.get_project_output(
            project_id=c.project, opts=pulumi.InvokeOutputOptions(parent=self, provider=provider)).number
        tenant_grants = [
            PrefixGrant(
                title=f"tenant-{tenant}",
                member=pulumi.Output.all(project_number, cluster.workload_pool).apply(
                    partial(_tenant_principal, tenant)),
                role="roles/storage.objectUser",
                prefix=f"{tenant}/",
            )
            for tenant in c.tenants
        ]
        BucketAccess("artifacts-access", BucketAccessArgs(
            bucket=bucket.bucket.name,
            whole_bucket={"operator": accounts.operator.member},
            prefix_grants=[*tenant_grants, uploads_reader("builder-uploads", accounts.builder.member)],
        ), child)

        dns_endpoint = cluster.cluster.control_plane_endpoints_config.dns_endpoint_config.endpoint
        server = dns_endpoint if c.dns_endpoint else cluster.cluster.endpoint
        ca = None if c.dns_endpoint else cluster.cluster.master_auth.cluster_ca_certificate
        kubeconfig_text: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(server, ca).apply(partial(_kubeconfig, name)))
        self.outputs = {
            "clusterName": cluster.cluster.name,
            "endpoint": server,
            "kubeconfig": kubeconfig_text,
            "bucket": bucket.bucket.name,
            "registry": registry.url,
            "workloadPool": cluster.workload_pool,
            "nodeServiceAccount": accounts.nodes.email,
            "operatorServiceAccount": accounts.operator.email,
            "builderServiceAccount": accounts.builder.email,
            "gpuPools": [{"name": p.name, "gpuType": p.gpu_type, "gpusPerNode": p.gpus_per_node, "spot": p.spot,
                          "machineType": p.machine_type} for p in c.gpu_pools],
            "tenants": list(c.tenants),
        }
        self.node_pools = [pools.system, pools.builds, *pools.gpu.values()]
        self.register_outputs(self.outputs)
