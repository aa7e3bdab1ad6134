"""How the operator proves who it is to the API server: one `Credentials` for every call and watch it makes.

In its pod, the service account the kubelet mounts, read as client-go's `rest.InClusterConfig` and the `kubernetes`
package's `InClusterConfigLoader` read it: the server is https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
(an IPv6 host in brackets, as Go's net.JoinHostPort writes it), the CA is `ca.crt`, and the bearer token is `token`,
read again once a minute (TOKEN_REREAD_SECONDS), since the kubelet rotates a projected token in place (client-go's
cached file token source and the Python loader both re-read it every minute). No `kubernetes` package is needed for
that: the operator's image does not install it (it is the CLI's extra), which keeps 30 MB and 0.4 s of imports out of
the operator's process.

Outside a cluster (someone running the operator against a cluster from a laptop), the kubeconfig, loaded by the
`kubernetes` package, imported only then: it runs exec plugins such as gke-gcloud-auth-plugin.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import kubernetes

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
HOST_VARIABLE, PORT_VARIABLE = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"
TOKEN_REREAD_SECONDS = 60.0


class LoginError(Exception):
    """The operator cannot tell who it is: it says what it looked for, and stops before any watch starts."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to prove who we are. `authorization` gives the Authorization header's value
    fresh on each call (a rotated token is picked up without a restart)."""

    server: str
    authorization: Callable[[], str | None] = lambda: None
    ca_path: str | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None
    insecure: bool = False

    def tls(self) -> ssl.SSLContext | None:
        """The TLS context of an https server: its CA, our client certificate if any."""
        if not self.server.startswith("https"):
            return None
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.certificate_path:
            context.load_cert_chain(self.certificate_path, self.private_key_path)
        if self.insecure:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context


@dataclasses.dataclass
class TokenFile:
    """A mounted token as a bearer Authorization header, read again once it is TOKEN_REREAD_SECONDS old. Should a
    re-read fail, the token already read is kept (client-go's caching token source does the same)."""

    path: Path
    clock: Callable[[], float] = time.monotonic
    _header: str | None = None
    _read_at: float = float("-inf")

    def __call__(self) -> str:
        now = self.clock()
        if self._header is not None and now - self._read_at < TOKEN_REREAD_SECONDS:
            return self._header
        try:
            token = self.path.read_text().strip()
        except OSError as error:
            if self._header is None:
                raise LoginError(f"cannot read the service account token {self.path}: {error}") from error
            return self._header
        if not token:
            if self._header is None:
                raise LoginError(f"the service account token {self.path} is empty")
            return self._header
        header = self._header = f"Bearer {token}"
        self._read_at = now
        return header


def in_cluster(environ: Mapping[str, str] = os.environ, directory: Path = SERVICE_ACCOUNT_DIR) -> Credentials | None:
    """The pod's service account, or None outside a pod (no KUBERNETES_SERVICE_HOST/PORT)."""
    host, port = environ.get(HOST_VARIABLE, ""), environ.get(PORT_VARIABLE, "")
    if not host or not port:
        return None
    ca_path = directory / "ca.crt"
    if not ca_path.is_file() or not ca_path.read_text().strip():
        raise LoginError(f"{HOST_VARIABLE} is set but the service account's CA {ca_path} is missing or empty: is "
                         f"automountServiceAccountToken off for the operator's pod?")
    token = TokenFile(directory / "token")
    token()  # a missing or empty token fails now, not at the first call
    server_host = f"[{host}]" if ":" in host or "%" in host else host
    return Credentials(server=f"https://{server_host}:{port}", authorization=token, ca_path=str(ca_path))


def from_configuration(configuration: kubernetes.client.Configuration) -> Credentials:
    """A configuration as the `kubernetes` package loads one. Its token is under `BearerToken` since kubernetes 36
    (kubernetes-client/python#2585), under `authorization` before; asked on each call, so a refresh hook
    (an exec plugin's expiring token) runs when it should."""

    def authorization() -> str | None:
        header = (configuration.get_api_key_with_prefix("BearerToken")
                  or configuration.get_api_key_with_prefix("authorization"))
        return str(header) if header else None

    return Credentials(server=configuration.host.rstrip("/"), authorization=authorization,
                       ca_path=configuration.ssl_ca_cert, certificate_path=configuration.cert_file,
                       private_key_path=configuration.key_file, insecure=not configuration.verify_ssl)


def from_kubeconfig() -> Credentials:
    """The current context of $KUBECONFIG (or ~/.kube/config), through the `kubernetes` package."""
    try:
        import kubernetes
    except ImportError as error:
        raise LoginError("not in a pod, so the operator reads your kubeconfig, with the `kubernetes` package: "
                         "install it (pip install 'modelplane[cli]')") from error
    configuration: Any = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as error:
        raise LoginError(f"not in a pod, and no usable kubeconfig: {error}") from error
    return from_configuration(configuration)


def load(environ: Mapping[str, str] = os.environ) -> Credentials:
    """In a pod its service account, elsewhere the kubeconfig."""
    return in_cluster(environ) or from_kubeconfig()
