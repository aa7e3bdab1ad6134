"""The emulator layer's fixtures: kmock's Kubernetes emulator doing what the API server does where the operator
relies on it, the operator running in-process against it (tests/support/kube.py), and fake-gcs-server."""

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2 import service_account

from fakes.gcs import fake_gcs_in_memory
from tests.support.emulator import ApiServerEmulator
from tests.support.kube import k8s, kubeconfig, operator

__all__ = ["k8s", "kubeconfig", "operator"]  # the harness's fixtures, for every test of this layer


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """Every test's Kubernetes emulator does what the API server does where the operator relies on it."""
    return {**kmock_options, "cls": ApiServerEmulator}


@pytest.fixture(scope="session")
def gcs_client() -> Iterator[storage.Client]:
    """A real google-cloud-storage client talking to a real fake-gcs-server process."""
    with fake_gcs_in_memory():
        yield storage.Client(project="modelplane-test",
                             credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]


@pytest.fixture
def bucket(gcs_client: storage.Client, request: pytest.FixtureRequest) -> storage.Bucket:
    """A fresh bucket per test."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"b-{slug}-{hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]}"  # unique per parameter too
    return gcs_client.create_bucket(name)


@pytest.fixture(scope="session")
def signing_credentials() -> service_account.Credentials:
    """Service-account credentials with a throwaway key: V4 URLs are signed locally, as IAM signBlob would."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return service_account.Credentials.from_service_account_info({  # type: ignore[no-untyped-call,no-any-return]
        "type": "service_account", "client_email": "modelplane-dev-operator@modelplane-dev.iam.gserviceaccount.com",
        "private_key": pem, "token_uri": "https://oauth2.googleapis.com/token", "project_id": "modelplane-dev"})
