"""`kubectl port-forward`, the only way to a notebook (it has no Service address, ingress or public IP).

It runs against the very context and namespace the plugin uses (Target.kubectl_flags), and its URL is worth
printing only once it listens: kubectl says `Forwarding from 127.0.0.1:PORT -> PORT` after binding the local port,
and exits when it cannot (the port is taken, the pod is gone, port-forward is forbidden). Its output goes to
files, not pipes: a pipe nobody drains would block kubectl at its next `Handling connection` line.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import IO

from modelplane.cli.errors import CliError, Exit
from modelplane.cli.kubeconfig import Target

LISTEN_TIMEOUT = 30.0
LISTENING = b"Forwarding from "


@contextlib.contextmanager
def port_forward(target: Target, pod: str, port: int, timeout: float = LISTEN_TIMEOUT) -> Iterator[None]:
    """localhost:`port` forwarded to the pod's, listening, for the block; or an error naming kubectl's stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(["kubectl", *target.kubectl_flags(), "port-forward", f"pod/{pod}",
                                        f"{port}:{port}"], stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as error:
            raise CliError(Exit.FAILED, f"cannot run kubectl port-forward: {error}") from error
        try:
            _wait_listening(process, out, err, timeout)
            yield
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(process: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        said = LISTENING in _read(out)  # read before polling: then it is alive after saying so
        if process.poll() is not None:
            raise CliError(Exit.FAILED, f"kubectl port-forward exited ({process.returncode}): {_tail(err)}")
        if said:
            return
        if time.monotonic() > deadline:
            raise CliError(Exit.FAILED, f"kubectl port-forward is not listening after {timeout:.0f}s: {_tail(err)}")
        time.sleep(0.1)


def _tail(err: IO[bytes], lines: int = 3) -> str:
    return " | ".join(_read(err).decode(errors="replace").strip().splitlines()[-lines:]) or "no message"


def _read(file: IO[bytes]) -> bytes:
    file.seek(0)
    return file.read()
