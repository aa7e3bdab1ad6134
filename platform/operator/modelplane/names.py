"""Names the cloud side and the cluster side must agree on (Workload Identity binds them together)."""

SYSTEM_NAMESPACE = "modelplane-system"
# Image builds run here, not in the tenants' namespaces: tenants have no RBAC in it, so no tenant can start a pod
# as a builder service account (which may push to the registry) or exec into a build. See builders/build.py.
BUILD_NAMESPACE = "modelplane-builds"
OPERATOR = "modelplane-operator"  # the operator's Deployment, ServiceAccount and ConfigMap
WORKLOAD_KSA = "modelplane-workload"  # tenant pods: direct Workload Identity Federation on their bucket prefix
GKE_SA_ANNOTATION = "iam.gke.io/gcp-service-account"
# Where things are in the bucket and on which nodes: modelplane/layout.py.


def builder_ksa(tenant: str) -> str:
    """The Kubernetes service account, in BUILD_NAMESPACE, that a tenant's builds run as (one per tenant, so that
    each tenant can later get a Google service account of its own)."""
    return f"builder-{tenant}"


def tenant_repository(platform_repository: str, tenant: str) -> str:
    """The tenant's own image repository, beside the platform's: `<region>-docker.pkg.dev/<project>/<cluster>` gives
    `.../<cluster>-<tenant>`. Only that tenant's builder may push to it; the platform's repository holds the operator
    and no tenant identity may write there."""
    return f"{platform_repository}-{tenant}"


# Metrics, scraped by GKE's managed Prometheus (PodMonitoring objects, deploy.py): the operator serves them on its own
# port; a ModelServer's pods on the capture proxy's port (payload counts) and the model server's `http` port (vLLM's
# /metrics).
OPERATOR_METRICS_PORT = 9090
METRICS_PORT_NAME = "metrics"
SERVER_PORT_NAME = "http"
CAPTURE_METRICS_PORT = 9090
CAPTURE_METRICS_PORT_NAME = "payload-metrics"
# The image of the platform's programs that run in tenant namespaces (capture proxy, monitor): built with the
# operator's, in the platform repository, and the one image of that repository tenant pods may run.
RUNTIME_IMAGE_NAME = "modelplane-runtime"


# Kueue: quota and queueing for GPUs. The stack makes a ClusterQueue per GPU type (and one for CPU-only work) and,
# in each tenant namespace, a LocalQueue pointing at each; every Job the operator makes carries the LocalQueue of its
# GPU type in this label (Kueue's webhook then suspends it until the queue admits it).
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
CPU_QUEUE = "cpu"


def local_queue(gpu_type: str | None) -> str:
    """The LocalQueue (in every tenant namespace) for work on this GPU type, or CPU-only work."""
    return f"gpu-{gpu_type}" if gpu_type else CPU_QUEUE


def cluster_queue(gpu_type: str | None) -> str:
    """The ClusterQueue behind local_queue(gpu_type): one per GPU type of the stack, shared by its tenants."""
    return f"modelplane-{local_queue(gpu_type)}"
