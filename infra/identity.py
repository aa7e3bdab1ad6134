"""Who may do what, with no keys anywhere.

Three Google service accounts: nodes (logs, metrics, image pulls), the operator (bucket read/write and signing its
own upload URLs), image builders (push to the registry, read build uploads). Tenant workloads get no Google service
account at all: Workload Identity Federation principals for their Kubernetes service account are granted access to
their namespace's bucket prefix directly (see infra/buckets/access.py).
"""

from dataclasses import dataclass
from functools import partial

import pulumi
import pulumi_gcp as gcp

from modelplane.names import BUILD_NAMESPACE, SYSTEM_NAMESPACE, builder_ksa
from modelplane.names import OPERATOR as OPERATOR_KSA

NODE_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/stackdriver.resourceMetadata.writer")


def ksa_member(workload_pool: str, namespace: str, ksa: str) -> str:
    """The IAM member a Kubernetes service account acts as when it impersonates a Google service account."""
    return f"serviceAccount:{workload_pool}[{namespace}/{ksa}]"


def ksa_principal(project_number: str, workload_pool: str, namespace: str, ksa: str) -> str:
    """The direct Workload Identity Federation principal of a Kubernetes service account (no Google SA needed)."""
    return (f"principal://iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/"
            f"{workload_pool}/subject/ns/{namespace}/sa/{ksa}")


@dataclass(frozen=True)
class ServiceAccountsArgs:
    prefix: str
    project: str


class ServiceAccounts(pulumi.ComponentResource):
    nodes: gcp.serviceaccount.Account
    operator: gcp.serviceaccount.Account
    builder: gcp.serviceaccount.Account

    def __init__(self, name: str, args: ServiceAccountsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:ServiceAccounts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def account(role: str, purpose: str) -> gcp.serviceaccount.Account:
            return gcp.serviceaccount.Account(
                f"{name}-{role}", account_id=f"{args.prefix}-{role}", display_name=f"modelplane {role}",
                description=purpose, opts=child)

        self.nodes = account("nodes", "GKE nodes: write logs and metrics, pull images")
        self.operator = account("operator", "modelplane operator: artifacts bucket, signed upload URLs")
        self.builder = account("builder", "modelplane image builds: read uploads, push images")
        for role in NODE_ROLES:
            gcp.projects.IAMMember(f"{name}-nodes-{role.split('/')[1]}", project=args.project, role=role,
                                   member=self.nodes.member, opts=child)
        # Signing a V4 URL without a key is an IAM signBlob call on the operator's own account.
        gcp.serviceaccount.IAMMember(f"{name}-operator-signs", service_account_id=self.operator.name,
                                     role="roles/iam.serviceAccountTokenCreator", member=self.operator.member,
                                     opts=child)
        self.register_outputs({"nodes": self.nodes.email, "operator": self.operator.email,
                               "builder": self.builder.email})


@dataclass(frozen=True)
class WorkloadIdentityArgs:
    accounts: ServiceAccounts
    workload_pool: pulumi.Output[str]
    tenants: tuple[str, ...]


class WorkloadIdentity(pulumi.ComponentResource):
    """Lets the operator's and the builders' Kubernetes service accounts act as their Google service accounts."""

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:WorkloadIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bindings = [(args.accounts.operator, SYSTEM_NAMESPACE, OPERATOR_KSA)]
        # Each tenant's builds run as its own KSA in the build namespace, where tenants cannot create pods.
        bindings += [(args.accounts.builder, BUILD_NAMESPACE, builder_ksa(tenant)) for tenant in args.tenants]
        for account, namespace, ksa in bindings:
            gcp.serviceaccount.IAMMember(
                f"{name}-{namespace}-{ksa}",
                service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                # Built from the cluster's own output: the pool exists only once the cluster does.
                member=args.workload_pool.apply(partial(ksa_member, namespace=namespace, ksa=ksa)),
                opts=child,
            )
        self.register_outputs({})
