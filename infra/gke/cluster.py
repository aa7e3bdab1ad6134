"""A hardened GKE Standard cluster for ML: VPC-native, private nodes, Workload Identity, GCS FUSE, Dataplane V2.

The control plane is reached through its DNS endpoint (IAM-authenticated, works from a laptop or CI outside the
VPC) while the IP endpoint admits only the configured authorized networks.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import container

from infra.config import StackConfig
from infra.gke.binary_authorization import cluster_setting
from infra.gke.encryption import SecretsKey
from infra.network import PODS_RANGE, SERVICES_RANGE

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def hardened_node_config(service_account: pulumi.Input[str]) -> container.ClusterNodeConfigArgsDict:
    """Node settings every pool shares: own service account, GKE metadata server, shielded boot."""
    return {
        "service_account": service_account,
        "oauth_scopes": [CLOUD_PLATFORM_SCOPE],  # access is narrowed by IAM roles, not scopes
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        "metadata": {"disable-legacy-endpoints": "true"},
    }


@dataclass(frozen=True)
class ClusterArgs:
    config: StackConfig
    network: pulumi.Input[str]
    subnet: pulumi.Input[str]
    node_service_account: pulumi.Input[str]
    secrets_key: SecretsKey | None  # application-layer Secrets encryption, when the stack turns it on


class Cluster(pulumi.ComponentResource):
    cluster: container.Cluster
    workload_pool: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:Cluster", name, None, opts)
        c = args.config
        key = args.secrets_key
        self.cluster = container.Cluster(
            name,
            name=c.cluster_name,
            location=c.region,
            node_locations=list(c.zones),
            # The default pool is removed at once; it still runs as our node account while it exists.
            remove_default_node_pool=True,
            initial_node_count=1,
            node_config=hardened_node_config(args.node_service_account),
            network=args.network,
            subnetwork=args.subnet,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={"cluster_secondary_range_name": PODS_RANGE,
                                  "services_secondary_range_name": SERVICES_RANGE},
            release_channel={"channel": c.release_channel},
            workload_identity_config={"workload_pool": f"{c.project}.svc.id.goog"},
            addons_config={
                "gcs_fuse_csi_driver_config": {"enabled": True},
                "gce_persistent_disk_csi_driver_config": {"enabled": True},
                "dns_cache_config": {"enabled": True},
            },
            datapath_provider="ADVANCED_DATAPATH",  # Dataplane V2 enforces NetworkPolicy itself
            enable_shielded_nodes=True,
            enable_legacy_abac=False,
            master_auth={"client_certificate_config": {"issue_client_certificate": False}},
            private_cluster_config={"enable_private_nodes": c.private_nodes, "enable_private_endpoint": False},
            master_authorized_networks_config={
                "cidr_blocks": [{"display_name": n.name, "cidr_block": n.cidr} for n in c.master_authorized_networks],
                "gcp_public_cidrs_access_enabled": False,
            },
            control_plane_endpoints_config={"dns_endpoint_config": {"allow_external_traffic": c.dns_endpoint}},
            logging_config={"enable_components": ["SYSTEM_COMPONENTS", "WORKLOADS"]},
            monitoring_config={"enable_components": ["SYSTEM_COMPONENTS", "DCGM"],
                               "managed_prometheus": {"enabled": True}},
            maintenance_policy={"recurring_window": {"start_time": c.maintenance.start_time,
                                                     "end_time": c.maintenance.end_time,
                                                     "recurrence": c.maintenance.recurrence}},
            security_posture_config={"mode": "BASIC", "vulnerability_mode": "VULNERABILITY_BASIC"},
            cost_management_config={"enabled": True},
            binary_authorization=cluster_setting(c.binary_authorization),
            deletion_protection=c.deletion_protection,
            database_encryption={"state": "ENCRYPTED", "key_name": key.key.id} if key else None,
            # Google Groups for RBAC: tenants' members may be groups.
            authenticator_groups_config={"security_group": c.rbac_security_group} if c.rbac_security_group else None,
            # GKE checks that its service agent may use the key before it creates the cluster.
            opts=pulumi.ResourceOptions(parent=self, protect=c.deletion_protection,
                                        depends_on=[key.grant] if key else [],
                                        ignore_changes=["node_config", "initial_node_count"]),
        )
        self.workload_pool = self.cluster.workload_identity_config.workload_pool
        self.register_outputs({"name": self.cluster.name, "endpoint": self.cluster.endpoint})
