"""The unit layer: pure tests, which open no socket, start no process and plan nothing with Pulumi's mocks, so
`pytest tests/unit` runs alone, in seconds. A test here that reaches for any of these fails, naming where it goes:
tests/emulator (the Kubernetes emulator, fake-gcs-server, local servers and processes) or tests/plan (the stack's
offline plan)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

import infra.offline


def _refuse(what: str, layer: str) -> Any:
    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError(f"a unit test {what}: it belongs in {layer}")
    return refused


@pytest.fixture(autouse=True)
def pure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _refuse("connects a socket", "tests/emulator"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("binds a socket", "tests/emulator"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("starts a process", "tests/emulator"))
    monkeypatch.setattr(infra.offline, "run_program", _refuse("plans the stack", "tests/plan"))
    yield
