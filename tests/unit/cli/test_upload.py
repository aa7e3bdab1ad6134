"""The build context goes to Cloud Storage over https, or to the emulator the environment names, and nowhere else:
the signed URL comes from an object's status, which others than the operator may be able to write."""

import io
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from modelplane.cli.errors import CliError, Exit
from modelplane.cli.upload import BLOCK, put

SIGNED = "/b/uploads/ml/models/m/0123.tar.gz?X-Goog-Signature=abc"
MD5 = "00" * 16


class Response:
    """What urlopen returns, as a context manager, for a PUT that succeeded."""

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *_: Any) -> None:
        pass


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[urllib.request.Request]:
    """The requests put() makes (none leaves the machine)."""
    requests: list[urllib.request.Request] = []

    def urlopen(request: urllib.request.Request, timeout: float) -> Response:
        requests.append(request)
        return Response()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requests


@pytest.mark.parametrize("url", [
    "http://storage.googleapis.com" + SIGNED,  # not https
    "https://attacker.example" + SIGNED,  # not the storage host
    "https://storage.googleapis.com.attacker.example" + SIGNED,
    "https://storage.googleapis.com@attacker.example" + SIGNED,  # userinfo: the host is attacker.example
    "https://storage.googleapis.com:8443" + SIGNED,
    "file:///etc/passwd",
])
def test_a_url_that_is_not_cloud_storage_over_https_is_refused(
        url: str, sent: list[urllib.request.Request], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    with pytest.raises(CliError) as refused:
        put(url, io.BytesIO(b"code"), 4, MD5)
    assert refused.value.code == Exit.UPLOAD and sent == []


def test_cloud_storage_over_https_is_used_as_signed(
        sent: list[urllib.request.Request], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    put("https://storage.googleapis.com" + SIGNED, io.BytesIO(b"code"), 4, MD5)
    assert [r.full_url for r in sent] == ["https://storage.googleapis.com" + SIGNED]


def test_the_emulator_host_is_allowed_only_when_it_is_set(
        sent: list[urllib.request.Request], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    with pytest.raises(CliError):
        put("http://127.0.0.1:4443" + SIGNED, io.BytesIO(b"code"), 4, MD5)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:4443")
    put("http://127.0.0.1:4443" + SIGNED, io.BytesIO(b"code"), 4, MD5)
    # What the operator signs: sent to the emulator.
    put("https://storage.googleapis.com" + SIGNED, io.BytesIO(b"code"), 4, MD5)
    with pytest.raises(CliError):
        put("http://127.0.0.1:9999" + SIGNED, io.BytesIO(b"code"), 4, MD5)  # another host is refused still
    assert [r.full_url for r in sent] == ["http://127.0.0.1:4443" + SIGNED] * 2
    assert sent[1].get_header("Host") == "storage.googleapis.com"


def test_the_body_is_streamed_in_blocks_from_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """put() hands the connection the file a block at a time (http.client reads a body with `read` until empty):
    32 MiB go out with the memory of a block, and the progress callback sees every byte."""
    body = tmp_path / "context.tar.gz"
    with body.open("wb") as empty:
        empty.truncate(32 << 20)
    read: list[int] = []

    def urlopen(request: urllib.request.Request, timeout: float) -> Response:
        while chunk := request.data.read(8192):  # type: ignore[union-attr]
            read.append(len(chunk))
        return Response()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    progress: list[int] = []
    tracemalloc.start()
    try:
        with body.open("rb") as file:
            put("https://storage.googleapis.com" + SIGNED, file, 32 << 20, MD5, progress.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(read) == sum(progress) == 32 << 20 and max(read) <= BLOCK
    assert peak < 4 << 20, f"peak {peak:,} bytes"
