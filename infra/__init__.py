"""The cloud half of modelplane: Pulumi components for the network, GKE, buckets, registry and identities."""
