"""Who may do what, with no keys anywhere.

Google service accounts: nodes (logs, metrics, image pulls), the operator (bucket read/write and signing its own
upload URLs), and one image builder per tenant (push to that tenant's repository, read that tenant's uploads: no
account serves two tenants, so one tenant's build can neither read another's contexts nor overwrite its images or
the platform's). Tenant workloads get no Google service account at all: Workload Identity Federation principals
for their Kubernetes service account are granted their namespace's bucket prefix directly (infra/buckets/access.py).
"""

import hashlib
from dataclasses import dataclass
from functools import partial

import pulumi
from pulumi_gcp import projects, serviceaccount

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


ACCOUNT_ID_MAX = 30  # GCP service account ids: 6-30 characters


def builder_account_id(prefix: str, tenant: str) -> str:
    """`<prefix>-b-<tenant>`, or, when that is longer than GCP allows, the tenant's name replaced by a digest of it
    (the account's display name still names the tenant). Distinct tenants always get distinct ids."""
    readable = f"{prefix}-b-{tenant}"
    if len(readable) <= ACCOUNT_ID_MAX:
        return readable
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:8]
    return f"{prefix[:ACCOUNT_ID_MAX - len(digest) - 3]}-b-{digest}"


@dataclass(frozen=True)
class ServiceAccountsArgs:
    prefix: str
    project: str
    tenants: tuple[str, ...]


class ServiceAccounts(pulumi.ComponentResource):
    nodes: serviceaccount.Account
    operator: serviceaccount.Account
    release: serviceaccount.Account  # builds the operator image with Cloud Build (infra/operator_image.py)
    builders: dict[str, serviceaccount.Account]  # tenant -> its builder

    def __init__(self, name: str, args: ServiceAccountsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:ServiceAccounts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def account(role: str, purpose: str, account_id: str = "") -> serviceaccount.Account:
            return serviceaccount.Account(
                f"{name}-{role}", account_id=account_id or f"{args.prefix}-{role}", display_name=f"modelplane {role}",
                description=purpose, opts=child)

        self.nodes = account("nodes", "GKE nodes: write logs and metrics, pull images")
        self.operator = account("operator", "modelplane operator: artifacts bucket, signed upload URLs")
        self.release = account("release", "Cloud Build of the operator image: push to the platform repository")
        self.builders = {
            tenant: account(f"builder-{tenant}", f"image builds of tenant {tenant}: its uploads, its repository",
                            builder_account_id(args.prefix, tenant))
            for tenant in args.tenants}
        for role in NODE_ROLES:
            projects.IAMMember(f"{name}-nodes-{role.split('/')[1]}", project=args.project, role=role,
                                   member=self.nodes.member, opts=child)
        projects.IAMMember(f"{name}-release-logWriter", project=args.project, role="roles/logging.logWriter",
                               member=self.release.member, opts=child)
        # Signing a V4 URL without a key is an IAM signBlob call on the operator's own account.
        serviceaccount.IAMMember(f"{name}-operator-signs", service_account_id=self.operator.name,
                                     role="roles/iam.serviceAccountTokenCreator", member=self.operator.member,
                                     opts=child)
        self.register_outputs({"nodes": self.nodes.email, "operator": self.operator.email,
                               "release": self.release.email,
                               "builders": {tenant: a.email for tenant, a in self.builders.items()}})


@dataclass(frozen=True)
class WorkloadIdentityArgs:
    accounts: ServiceAccounts
    workload_pool: pulumi.Output[str]


class WorkloadIdentity(pulumi.ComponentResource):
    """Lets the operator's and the builders' Kubernetes service accounts act as their Google service accounts."""

    def __init__(self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:WorkloadIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bindings = [(args.accounts.operator, SYSTEM_NAMESPACE, OPERATOR_KSA)]
        # Each tenant's builds run as its own KSA in the build namespace, where tenants cannot create pods, acting as
        # the tenant's own builder account.
        bindings += [(account, BUILD_NAMESPACE, builder_ksa(tenant))
                     for tenant, account in args.accounts.builders.items()]
        for account, namespace, ksa in bindings:
            serviceaccount.IAMMember(
                f"{name}-{namespace}-{ksa}",
                service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                # Built from the cluster's own output: the pool exists only once the cluster does.
                member=args.workload_pool.apply(partial(ksa_member, namespace=namespace, ksa=ksa)),
                opts=child,
            )
        self.register_outputs({})
