"""Names the cloud side and the cluster side must agree on (Workload Identity binds them together)."""

SYSTEM_NAMESPACE = "modelplane-system"
OPERATOR = "modelplane-operator"  # the operator's Deployment, ServiceAccount and ConfigMap
WORKLOAD_KSA = "modelplane-workload"  # tenant pods: direct Workload Identity Federation on their bucket prefix
BUILDER_KSA = "modelplane-builder"  # tenant image builds: impersonate the builder Google service account
GKE_SA_ANNOTATION = "iam.gke.io/gcp-service-account"
