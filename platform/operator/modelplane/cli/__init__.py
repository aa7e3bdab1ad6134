"""The ML user's command line: kubectl plugins (`kubectl notebook`, `kubectl applybuild`) on the current kubeconfig.

Their packages are the [cli] extra (the operator's image leaves them out): without them, a plugin says how to get
them rather than fail on an import."""

try:
    import kubernetes  # noqa: F401
    import rich  # noqa: F401
except ImportError as error:
    raise SystemExit(f"modelplane's kubectl plugins need the {error.name} package: "
                     f"pip install 'modelplane[cli]'") from error
