"""The VPC the cluster lives in: one regional subnet with pod/service ranges, and NAT for private nodes.

Private nodes have no public IPs, yet loaders must reach model hubs and git hosts: Cloud NAT gives them egress
without opening any ingress.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import compute

from infra.config import NetworkRanges

PODS_RANGE = "pods"
SERVICES_RANGE = "services"


@dataclass(frozen=True)
class NetworkArgs:
    name: str
    region: str
    ranges: NetworkRanges


class Network(pulumi.ComponentResource):
    vpc: compute.Network
    subnet: compute.Subnetwork

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ranges = args.ranges
        self.vpc = compute.Network(
            name, name=args.name, auto_create_subnetworks=False, routing_mode="REGIONAL", opts=child)
        self.subnet = compute.Subnetwork(
            name,
            name=args.name,
            region=args.region,
            network=self.vpc.id,
            ip_cidr_range=ranges.subnet_cidr,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE, "ip_cidr_range": ranges.pods_cidr},
                {"range_name": SERVICES_RANGE, "ip_cidr_range": ranges.services_cidr},
            ],
            log_config={"aggregation_interval": "INTERVAL_10_MIN", "flow_sampling": 0.5,
                        "metadata": "INCLUDE_ALL_METADATA"},
            opts=child,
        )
        router = compute.Router(name, name=args.name, region=args.region, network=self.vpc.id, opts=child)
        compute.RouterNat(
            name,
            name=args.name,
            region=args.region,
            router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=child,
        )
        internal = [ranges.subnet_cidr, ranges.pods_cidr, ranges.services_cidr]
        compute.Firewall(
            f"{name}-allow-internal",
            name=f"{args.name}-allow-internal",
            network=self.vpc.id,
            direction="INGRESS",
            priority=1000,
            source_ranges=internal,
            allows=[{"protocol": "tcp"}, {"protocol": "udp"}, {"protocol": "icmp"}],
            opts=child,
        )
        # GCP already denies other ingress implicitly; an explicit logged rule makes the denials visible.
        compute.Firewall(
            f"{name}-deny-ingress",
            name=f"{args.name}-deny-ingress",
            network=self.vpc.id,
            direction="INGRESS",
            priority=65534,
            source_ranges=["0.0.0.0/0"],
            denies=[{"protocol": "all"}],
            log_config={"metadata": "INCLUDE_ALL_METADATA"},
            opts=child,
        )
        self.register_outputs({"network": self.vpc.id, "subnet": self.subnet.id})
