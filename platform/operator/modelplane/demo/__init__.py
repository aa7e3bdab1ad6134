"""Running the platform's workloads with no cluster: the retraining loop on a laptop and in tests."""
