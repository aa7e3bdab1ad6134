"""The facts most tests share: cluster facts like the dev stack's, its in-cluster half with one tenant, owners."""

from modelplane.cluster import ClusterFacts
from modelplane.deploy import PlatformFacts
from modelplane.layout import GpuPool
from modelplane.meta import Owner
from modelplane.names import OPERATOR, SYSTEM_NAMESPACE
from tests.support import rbac

KUBERNETES_VERSION = "1.34.0"  # the REGULAR channel's minor when this was written

DEV_CLUSTER = ClusterFacts(
    project="modelplane-dev",
    bucket="modelplane-dev-artifacts",
    registry="us-central1-docker.pkg.dev/modelplane-dev/modelplane-dev",
    gpu_pools=(GpuPool("l4", "nvidia-l4", 1, spot=True), GpuPool("a100", "nvidia-tesla-a100", 1, spot=True)),
    runtime_image="us-central1-docker.pkg.dev/modelplane-dev/modelplane-dev/modelplane-runtime:0.1.0-0123456789ab"
                  "@sha256:" + "1" * 64,
)


NAMESPACE = "ml"  # the tenant namespace of the tests
# The in-cluster half as a stack with that one tenant renders it (modelplane.deploy), for checks against it.
DEV_PLATFORM = PlatformFacts(
    project="p", region="us-central1", bucket=DEV_CLUSTER.bucket, registry=DEV_CLUSTER.registry,
    operator_service_account="operator@p.iam.gserviceaccount.com",
    builder_service_accounts={NAMESPACE: "builder@p.iam.gserviceaccount.com"}, gpu_pools=[], tenants=[NAMESPACE],
    operator_image="registry/modelplane-operator:0.1.0", runtime_image=DEV_CLUSTER.runtime_image,
    server_image=DEV_CLUSTER.server_image,
    notebook_image=DEV_CLUSTER.notebook_image, builder_image=DEV_CLUSTER.builder_image)
OPERATOR_USER = rbac.service_account(SYSTEM_NAMESPACE, OPERATOR)


def owner(kind: str, name: str, generation: int = 1, namespace: str = "ml") -> Owner:
    return Owner(kind=kind, name=name, namespace=namespace, uid=f"uid-{kind.lower()}-{name}", generation=generation)
