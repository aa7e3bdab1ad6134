"""Shared fixtures: the real Pulumi program, planned offline once per stack file."""

import hashlib
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2 import service_account

from fakes.gcs import fake_gcs_in_memory
from infra.offline import Plan, read_stack_values, run_program
from tests.support.emulator import ApiServerEmulator

pytest_plugins = ["tests.support.kube"]  # the kmock/kopf fixtures, for the operator and the CLI tests

@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """Every test's Kubernetes emulator does what the API server does where the operator relies on it."""
    return {**kmock_options, "cls": ApiServerEmulator}


STACKS = ("dev", "prod")
_plans: dict[str, Plan] = {}


def plan_for(stack: str) -> Plan:
    """The plan of a checked-in stack file; the program runs once per stack per session."""
    if stack not in _plans:
        _plans[stack] = run_program(stack, read_stack_values(stack))
    return _plans[stack]


@pytest.fixture(params=STACKS)
def stack_plan(request: pytest.FixtureRequest) -> Plan:
    return plan_for(request.param)


@pytest.fixture
def dev_plan() -> Plan:
    return plan_for("dev")


@pytest.fixture
def prod_plan() -> Plan:
    return plan_for("prod")


@pytest.fixture
def dev_values() -> dict[str, Any]:
    return read_stack_values("dev")


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


def put_signed(url: str, data: bytes, md5_b64: str, content_type: str = "application/octet-stream") -> int:
    """PUT to a signed URL as a client would; the request reaches fake-gcs-server, which answers for the GCS host."""
    parts = urllib.parse.urlsplit(url)
    local = urllib.parse.urlunsplit(("http", os.environ["STORAGE_EMULATOR_HOST"].removeprefix("http://"),
                                     parts.path, parts.query, ""))
    request = urllib.request.Request(local, data=data, method="PUT", headers={
        "Host": parts.netloc, "Content-Type": content_type, "Content-MD5": md5_b64})
    with urllib.request.urlopen(request) as response:
        status: int = response.status
        return status
