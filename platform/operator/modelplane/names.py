"""Names the cloud side and the cluster side must agree on (Workload Identity binds them together)."""

SYSTEM_NAMESPACE = "modelplane-system"
# Image builds run here, not in the tenants' namespaces: tenants have no RBAC in it, so no tenant can start a pod
# as a builder service account (which may push to the registry) or exec into a build. See builders/build.py.
BUILD_NAMESPACE = "modelplane-builds"
OPERATOR = "modelplane-operator"  # the operator's Deployment, ServiceAccount and ConfigMap
WORKLOAD_KSA = "modelplane-workload"  # tenant pods: direct Workload Identity Federation on their bucket prefix
GKE_SA_ANNOTATION = "iam.gke.io/gcp-service-account"

# The build node pool: GKE Sandbox (gVisor) nodes that run image builds and nothing else. GKE itself taints sandbox
# nodes (sandbox.gke.io/runtime=gvisor) and its `gvisor` RuntimeClass tolerates that; this label and taint keep
# other sandboxed pods off the build nodes and builds on them.
SANDBOX_RUNTIME_CLASS = "gvisor"
BUILD_POOL = "builds"
BUILD_POOL_LABEL = "modelplane.dev/build-pool"
BUILD_POOL_TAINT_KEY = "modelplane.dev/builds"


def builder_ksa(tenant: str) -> str:
    """The Kubernetes service account, in BUILD_NAMESPACE, that a tenant's builds run as (one per tenant, so that
    each tenant can later get a Google service account of its own)."""
    return f"builder-{tenant}"
