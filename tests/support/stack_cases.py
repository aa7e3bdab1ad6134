"""Stack configs for the tests: the dev values changed one way at a time, each bad one with the key and the
message it must get."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Values = dict[str, Any]


def pool(values: Values, index: int = 0) -> dict[str, Any]:
    pools: list[dict[str, Any]] = values["modelplane:gpuPools"]
    return pools[index]


DIGEST = "sha256:" + "a" * 64


OPERATOR = f"ghcr.io/example/modelplane-operator:0.1.0@{DIGEST}"


RUNTIME = f"ghcr.io/example/modelplane-runtime:0.1.0@{DIGEST}"


BAD_CONFIGS: list[tuple[str, Callable[[Values], None], str, str]] = [
    ("missing project", lambda v: v.pop("modelplane:project"), "modelplane:project", "required"),
    ("malformed project", lambda v: v.update({"modelplane:project": "My_Project"}), "modelplane:project",
     "is not a GCP project id"),
    ("misspelt key", lambda v: v.update({"modelplane:gpuPool": []}), "modelplane:gpuPool",
     "did you mean 'gpuPools'"),
    ("bad region", lambda v: v.update({"modelplane:region": "uscentral"}), "modelplane:region",
     "is not a GCP region"),
    ("zone of another region", lambda v: v.update({"modelplane:zones": ["europe-west4-a"]}), "modelplane:zones",
     "is not a zone of region us-central1"),
    ("unknown release channel", lambda v: v.update({"modelplane:releaseChannel": "FAST"}),
     "modelplane:releaseChannel", "use one of RAPID, REGULAR, STABLE, EXTENDED"),
    ("unknown GPU type", lambda v: pool(v).update({"gpuType": "nvidia-a10"}), "modelplane:gpuPools[0].gpuType",
     "use one of nvidia-l4, nvidia-tesla-a100"),
    ("machine type without that GPU", lambda v: pool(v).update({"machineType": "a2-highgpu-1g"}),
     "modelplane:gpuPools[0].machineType", "does not carry 1 x nvidia-l4; use one of g2-standard-8"),
    ("GPU count no shape offers", lambda v: pool(v).update({"gpusPerNode": 3, "machineType": None}),
     "modelplane:gpuPools[0].gpusPerNode", "nvidia-l4 comes 1, 2, 4, 8 per node, not 3"),
    ("fractional H100 on demand", lambda v: pool(v).update(
        {"gpuType": "nvidia-h100-80gb", "machineType": None, "spot": False}),
     "modelplane:gpuPools[0].gpusPerNode", "exists only as Spot capacity"),
    ("min above max", lambda v: pool(v, 1).update({"minNodes": 3, "maxNodes": 1}),
     "modelplane:gpuPools[1].maxNodes", "1 is below minNodes 3"),
    ("duplicate pool name", lambda v: pool(v, 1).update({"name": "l4"}), "modelplane:gpuPools",
     "pool name 'l4' is used twice"),
    ("unknown pool key", lambda v: pool(v).update({"gpus": 2}), "modelplane:gpuPools[0].gpus",
     "did you mean 'gpusPerNode'"),
    ("wrong value type", lambda v: pool(v).update({"maxNodes": "two"}), "modelplane:gpuPools[0].maxNodes",
     "expected an integer, got 'two'"),
    ("cluster name too long", lambda v: v.update({"modelplane:clusterName": "modelplane-development-x"}),
     "modelplane:clusterName", "at most 21 characters"),
    ("overlapping ranges", lambda v: v.update({"modelplane:network": {"podsCidr": "10.10.0.0/16"}}),
     "modelplane:network.podsCidr", "overlaps subnetCidr 10.10.0.0/20"),
    ("bad authorized network", lambda v: v.update(
        {"modelplane:masterAuthorizedNetworks": [{"name": "office", "cidr": "203.0.113.0/33"}]}),
     "modelplane:masterAuthorizedNetworks[0].cidr", "is not a CIDR block"),
    ("build pool min above max", lambda v: v.update({"modelplane:buildPool": {"minNodes": 3, "maxNodes": 2}}),
     "modelplane:buildPool.maxNodes", "2 is below minNodes 3"),
    ("build pool negative min", lambda v: v.update({"modelplane:buildPool": {"minNodes": -1}}),
     "modelplane:buildPool.minNodes", "-1 is out of range; use 0..100"),
    ("unknown build pool key", lambda v: v.update({"modelplane:buildPool": {"machine": "e2-standard-8"}}),
     "modelplane:buildPool.machine", "did you mean 'machineType'"),
    ("GPU pool named like a CPU pool", lambda v: pool(v).update({"name": "builds"}), "modelplane:gpuPools[0].name",
     "'builds' is the name of a CPU pool"),
    ("build namespace as tenant", lambda v: v.update({"modelplane:tenants": ["modelplane-builds"]}),
     "modelplane:tenants[0].name", "'modelplane-builds' is a system namespace"),
    ("system namespace as tenant", lambda v: v.update({"modelplane:tenants": ["ml", "kube-system"]}),
     "modelplane:tenants[1].name", "'kube-system' is a system namespace"),
    ("tenant named after the uploads folder", lambda v: v.update({"modelplane:tenants": ["ml", "uploads"]}),
     "modelplane:tenants[1].name", "'uploads' is a top-level folder of the artifacts bucket"),
    ("tenant name too long for its repository", lambda v: v.update({"modelplane:tenants": ["t" * 42]}),
     "modelplane:tenants[0].name", "at most 41 characters"),
    ("tenant member that is no IAM principal", lambda v: v.update(
        {"modelplane:tenants": [{"name": "ml", "members": ["ada@example.com"]}]}),
     "modelplane:tenants[0].members[0]", "'ada@example.com' is not an IAM principal such as user:"),
    ("group member without Google Groups for RBAC", lambda v: v.update(
        {"modelplane:tenants": [{"name": "ml", "members": ["group:ml@example.com"]}]}),
     "modelplane:rbacSecurityGroup", "required when a tenant member is a group"),
    ("RBAC group GKE would not accept", lambda v: v.update({"modelplane:rbacSecurityGroup": "ml@example.com"}),
     "modelplane:rbacSecurityGroup", "gke-security-groups@<your domain>"),
    ("no tenants", lambda v: v.update({"modelplane:tenants": []}),
     "modelplane:tenants", "needs at least one namespace"),
    ("server image by tag only", lambda v: v.update({"modelplane:images": {"server": "vllm/vllm-openai:latest"}}),
     "modelplane:images.server", "is not pinned by digest"),
    ("operator image by tag outside the platform repository", lambda v: v.update(
        {"modelplane:images": {"operator": "ghcr.io/someone/operator:1"}}),
     "modelplane:images.operator", "is not pinned by digest"),
    ("runtime image by tag only", lambda v: v.update({"modelplane:images": {
        "operator": OPERATOR, "runtime": "ghcr.io/example/modelplane-runtime:0.1.0"}}),
     "modelplane:images.runtime", "is not pinned by digest"),
    ("operator image without its runtime", lambda v: v.update({"modelplane:images": {"operator": OPERATOR}}),
     "modelplane:images.runtime", "set with images.operator, from the same release, or neither"),
    ("runtime image without its operator", lambda v: v.update({"modelplane:images": {"runtime": RUNTIME}}),
     "modelplane:images.runtime", "images.operator is not set, images.runtime ghcr.io/example/modelplane-runtime"),
    ("runtime image in a tenant's repository", lambda v: v.update({"modelplane:images": {
        "operator": OPERATOR, "runtime": f"us-central1-docker.pkg.dev/modelplane-dev/modelplane-dev-ml/x@{DIGEST}"}}),
     "modelplane:images.runtime", "lies in a tenant's repository"),
    ("unknown Binary Authorization mode", lambda v: v.update({"modelplane:binaryAuthorization": {"mode": "audit"}}),
     "modelplane:binaryAuthorization.mode", "use one of enforce, dryrun, off"),
    ("label value GCP refuses", lambda v: v["modelplane:labels"].update({"team": "ML Platform"}),
     "modelplane:labels.team", "a GCP label value is lower-case"),
    ("soft delete outside GCS range", lambda v: v.update({"modelplane:buckets": {"softDeleteDays": 3}}),
     "modelplane:buckets.softDeleteDays", "use 0 (off) or 7..90"),
    ("maintenance time not RFC 3339", lambda v: v.update({"modelplane:maintenanceWindow": {"startTime": "2am"}}),
     "modelplane:maintenanceWindow.startTime", "is not an RFC 3339 UTC time"),
    ("system pool size that does not exist", lambda v: v["modelplane:systemPool"].update(
        {"machineType": "e2-standard-64"}), "modelplane:systemPool.machineType",
     "e2-standard comes with 2, 4, 8, 16, 32 vCPUs"),
    ("empty section", lambda v: v.update({"modelplane:buckets": None}), "modelplane:buckets", "has no value"),
    ("yes for a boolean", lambda v: pool(v).update({"spot": "yes"}), "modelplane:gpuPools[0].spot",
     "expected true or false, got 'yes'"),
    ("queued provisioning on spot", lambda v: pool(v, 1).update({"queuedProvisioning": True}),
     "modelplane:gpuPools[1].queuedProvisioning", "cannot be combined with Spot VMs: set spot: false"),
    ("queued provisioning of a GPU GKE does not queue", lambda v: pool(v).update(
        {"queuedProvisioning": True, "spot": False}), "modelplane:gpuPools[0].queuedProvisioning",
     "serves nvidia-tesla-a100, nvidia-a100-80gb, nvidia-h100-80gb, not nvidia-l4"),
    ("queued provisioning with standing nodes", lambda v: pool(v, 1).update(
        {"queuedProvisioning": True, "spot": False, "minNodes": 1}), "modelplane:gpuPools[1].queuedProvisioning",
     "set minNodes: 0"),
    ("quota of a pool that does not exist", lambda v: v.update({"modelplane:queueing": {"pools": {"h100": {}}}}),
     "modelplane:queueing", "pools.h100: no GPU pool is named 'h100'; quotas are keyed by gpuPools' names (l4, a100)"),
    ("cohort that is not a name", lambda v: v.update({"modelplane:queueing": {"cohort": "GPU Pool"}}),
     "modelplane:queueing.cohort", "must be lower-case letters"),
]
