"""A kubeconfig that authenticates with `gke-gcloud-auth-plugin`: short-lived tokens, nothing static in state."""

import yaml


def kubeconfig(cluster_name: str, server: str, ca_certificate: str | None, namespace: str) -> str:
    """Kubeconfig text for `server`; a DNS endpoint uses a public CA, an IP endpoint needs the cluster's CA.

    The context names a tenant namespace: with none, kubectl (and `kubectl notebook`) work in `default`, which the
    operator does not watch, and a user's first Notebook would wait there forever."""
    cluster: dict[str, str] = {"server": server}
    if ca_certificate:
        cluster["certificate-authority-data"] = ca_certificate
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "gke-gcloud-auth-plugin",
            "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
            "interactiveMode": "IfAvailable",
        }}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name,
                                                        "namespace": namespace}}],
        "current-context": cluster_name,
    }, sort_keys=False)


def for_tenant(text: str, tenant: str) -> str:
    """The same kubeconfig with every context set to the tenant's namespace (what an ML user of `tenant` gets)."""
    config = yaml.safe_load(text)
    for context in config.get("contexts") or []:
        context["context"]["namespace"] = tenant
    return yaml.safe_dump(config, sort_keys=False)
