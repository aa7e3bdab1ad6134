"""The GKE cluster, its node pools (system and GPU) and the kubeconfig that reaches it."""
