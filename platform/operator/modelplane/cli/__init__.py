"""The ML user's command line: kubectl plugins (`kubectl notebook`, `kubectl applybuild`) on the current kubeconfig."""
