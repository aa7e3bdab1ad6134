"""The operator's login in a pod, against an HTTPS server that checks what the API server checks first: a TLS
handshake the pod's CA verifies, and the service account's bearer token on every request (authentication comes
before RBAC; without it the answer is 401).

The server is aiohttp with a certificate for 127.0.0.1 signed by a CA made here; the service account directory is a
temporary one laid out as the kubelet mounts it (token, ca.crt, namespace)."""

from __future__ import annotations

import datetime
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelplane.api.dataset import DATASET
from modelplane.operator.kube import Kube, TransientError
from modelplane.operator.login import TOKEN_REREAD_SECONDS, LoginError, TokenFile, in_cluster
from tests.support.http import serving

DAY = datetime.timedelta(days=1)


def certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
                issuer_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer.subject if issuer else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - DAY).not_valid_after(now + DAY))
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class ApiServer:
    """Answers a GET of a Dataset, if its bearer token is the one it expects; records every Authorization."""

    url: str
    token: str = "first"
    seen: list[str] = field(default_factory=list)

    async def answer(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401)
        return web.json_response({"kind": "Dataset", "metadata": {"name": request.match_info["name"]}})


@pytest.fixture
def authority(tmp_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return certificate("kubernetes-ca", key, None, key), key


def server_tls(tmp_path: Path, issuer: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "server.crt").write_bytes(pem(certificate("kube-apiserver", key, issuer, issuer_key)))
    (tmp_path / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    return context


@pytest.fixture
async def api_server(tmp_path: Path, authority: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
                     ) -> AsyncIterator[ApiServer]:
    app = web.Application()
    server = ApiServer(url="")
    app.router.add_get("/apis/modelplane.dev/v1alpha1/namespaces/{namespace}/datasets/{name}", server.answer)
    async with serving(app, server_tls(tmp_path, *authority)) as url:
        server.url = url
        yield server


def mounted(directory: Path, authority: x509.Certificate, token: str) -> Path:
    """A service account directory as the kubelet mounts it."""
    directory.mkdir(exist_ok=True)
    (directory / "ca.crt").write_bytes(pem(authority))
    (directory / "token").write_text(token)
    (directory / "namespace").write_text("modelplane-system")
    return directory


def environment(url: str) -> dict[str, str]:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}


async def test_in_a_pod_the_operator_verifies_the_server_and_sends_the_rotated_token(
        api_server: ApiServer, tmp_path: Path,
        authority: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
    directory = mounted(tmp_path / "serviceaccount", authority[0], "first\n")
    credentials = in_cluster(environment(api_server.url), directory)
    assert credentials is not None and credentials.server == api_server.url
    start = time.monotonic()  # in_cluster read the token once, by this clock
    now = [start]
    assert isinstance(credentials.authorization, TokenFile)
    credentials.authorization.clock = lambda: now[0]
    kube = Kube(credentials)
    try:
        assert await kube.get_object(DATASET, "ml", "a") == {"kind": "Dataset", "metadata": {"name": "a"}}
        # The kubelet rotates the token; the API server accepts only the new one from now on.
        (directory / "token").write_text("second")
        api_server.token = "second"
        now[0] = start + TOKEN_REREAD_SECONDS - 1  # not re-read yet: the old token is refused, and that is retried
        with pytest.raises(TransientError):
            await kube.get_object(DATASET, "ml", "b")
        now[0] = start + TOKEN_REREAD_SECONDS
        assert await kube.get_object(DATASET, "ml", "c") == {"kind": "Dataset", "metadata": {"name": "c"}}
        assert api_server.seen == ["Bearer first", "Bearer first", "Bearer second"]
        # The informers' watches log in with the same token.
        watched = [event async for event in kube.watch("/apis/modelplane.dev/v1alpha1/namespaces/ml/datasets/d", {},
                                                       read_timeout=5.0)]
        assert watched == [{"kind": "Dataset", "metadata": {"name": "d"}}]
        assert api_server.seen[-1] == "Bearer second"
    finally:
        await kube.close()


async def test_a_server_the_pods_ca_did_not_sign_is_not_trusted(api_server: ApiServer, tmp_path: Path) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = certificate("someone-else", other_key, None, other_key)
    credentials = in_cluster(environment(api_server.url), mounted(tmp_path / "serviceaccount", other, "first"))
    assert credentials is not None
    kube = Kube(credentials)
    try:
        with pytest.raises(TransientError, match="certificate verify failed"):
            await kube.get_object(DATASET, "ml", "a")
        assert api_server.seen == []  # the token never left the pod
    finally:
        await kube.close()


def test_outside_a_pod_there_is_no_service_account(tmp_path: Path) -> None:
    assert in_cluster({}, tmp_path) is None
    assert in_cluster({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": ""}, tmp_path) is None


def test_an_ipv6_service_host_is_bracketed(tmp_path: Path,
                                           authority: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> None:
    credentials = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"},
                             mounted(tmp_path / "sa", authority[0], "t"))
    assert credentials is not None and credentials.server == "https://[fd00:10:96::1]:443"


def test_a_pod_without_its_token_or_ca_is_told_so(tmp_path: Path,
                                                  authority: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
                                                  ) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(LoginError, match=r"ca\.crt is missing or empty: is automountServiceAccountToken off"):
        in_cluster(env, tmp_path)
    directory = mounted(tmp_path / "sa", authority[0], "")
    with pytest.raises(LoginError, match=r"token .* is empty"):
        in_cluster(env, directory)
    (directory / "token").unlink()
    with pytest.raises(LoginError, match="cannot read the service account token"):
        in_cluster(env, directory)


def test_a_token_that_cannot_be_read_again_keeps_the_last_one(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    now = [0.0]
    token = TokenFile(path, clock=lambda: now[0])
    assert token() == "Bearer first"
    path.unlink()  # mid-rotation
    now[0] = TOKEN_REREAD_SECONDS
    assert token() == "Bearer first"
    path.write_text("second")
    assert token() == "Bearer second"
