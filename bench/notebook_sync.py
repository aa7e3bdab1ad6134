"""Benchmark: `kubectl notebook`'s sync and build-context upload against fake-gcs-server, beside a floor measured in
the same run (median of 3 rounds each).

    python -m bench.notebook_sync [FILES=2000] [UPLOAD_MB=200]     (from the repository root)

- idle re-sync: FILES small files synced once, then synced again with nothing changed. Figures: the requests the
  second sync sends, its time, and how many files it hashed (it should read none: size and mtime decide).
- upload: a context of one UPLOAD_MB incompressible file packed (modelplane.cli.pack) and PUT through the CLI's
  streaming upload (modelplane.cli.upload.put), against a raw PUT of the same bytes, held in memory, to the same
  server. Figures: throughput ratio (target at least 0.8), peak Python memory of the pack and of the upload.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from fakes.gcs import fake_gcs_in_memory
from modelplane.cli import sync as sync_module
from modelplane.cli.pack import Packed, pack
from modelplane.cli.sync import sync
from modelplane.cli.upload import put
from modelplane.storage import STORAGE_HOST

ROUNDS = 3
# A V4 signed URL's query: fake-gcs-server takes a PUT carrying it as a signed upload (it checks no signature).
SIGNED_QUERY = ("X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=bench%2F20261203%2Fauto%2Fstorage%2Fgoog4_request"
                "&X-Goog-Date=20261203T000000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=content-md5%3Bcontent-type%3Bhost"
                "&X-Goog-Signature=00")


class Counted:
    """The requests the storage client sends (`METHOD path`), and the files the sync hashes, while in use."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.hashed = 0

    def __enter__(self) -> Counted:
        self.send, self.hashlib = requests.Session.request, getattr(sync_module, "hashlib")  # noqa: B009
        counted = self

        def request(session: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            counted.sent.append(f"{method} {url.split('?')[0]}")
            return counted.send(session, method, url, *args, **kwargs)

        class Hashing:
            def md5(self, *args: Any, **kwargs: Any) -> Any:
                counted.hashed += 1
                return hashlib.md5(*args, **kwargs)

        requests.Session.request = request  # type: ignore[method-assign,assignment]
        setattr(sync_module, "hashlib", Hashing())  # noqa: B010
        return self

    def __exit__(self, *_: Any) -> None:
        requests.Session.request = self.send  # type: ignore[method-assign]
        setattr(sync_module, "hashlib", self.hashlib)  # noqa: B010


def idle_resync(client: storage.Client, files: int, round_: int) -> dict[str, float]:
    bucket = client.create_bucket(f"sync-{round_}")
    with tempfile.TemporaryDirectory() as root:
        directory = Path(root)
        past = time.time() - 60  # settled files, as a workspace is between edits
        for i in range(files):
            path = directory / f"src/m{i // 100}/f{i}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"x = {i}\n")
            os.utime(path, (past, past))
        sync(directory, bucket, "ml/notebooks/nb/workspace/")
        with Counted() as counted:
            started = time.perf_counter()
            result = sync(directory, bucket, "ml/notebooks/nb/workspace/")
            seconds = time.perf_counter() - started
        assert not result.changed
        writes = [r for r in counted.sent if not r.startswith("GET")]
        return {"seconds": seconds, "requests": len(counted.sent), "writes": len(writes), "hashed": counted.hashed}


def put_ours(bucket: storage.Bucket, packed: Packed) -> tuple[float, int]:
    """The CLI's streaming upload, to a URL as the operator signs it (put() sends it to the emulator
    STORAGE_EMULATOR_HOST names, Host kept): its seconds and its peak Python memory."""
    url = f"{STORAGE_HOST}/{bucket.name}/uploads/ml/models/m/{packed.md5}.tar.gz?{SIGNED_QUERY}"
    packed.file.seek(0)
    tracemalloc.start()
    started = time.perf_counter()
    put(url, packed.file, packed.size, packed.md5)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def put_raw(emulator: str, bucket: storage.Bucket, packed: Packed) -> float:
    """The floor: the same bytes, already in memory, in one PUT."""
    packed.file.seek(0)
    request = urllib.request.Request(f"{emulator}/{bucket.name}/raw.tar.gz?{SIGNED_QUERY}", data=packed.file.read(),
                                     method="PUT", headers={"Content-Type": "application/gzip",
                                                            "Host": STORAGE_HOST.removeprefix("https://")})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600):
        pass
    return time.perf_counter() - started


def upload(emulator: str, client: storage.Client, megabytes: int, round_: int) -> dict[str, float]:
    bucket = client.create_bucket(f"upload-{round_}")
    with tempfile.TemporaryDirectory() as root:
        directory = Path(root)
        (directory / "Dockerfile").write_text("FROM python:3.11-slim\n")
        with (directory / "weights.bin").open("wb") as weights:
            for _ in range(megabytes):
                weights.write(os.urandom(1 << 20))
        tracemalloc.start()
        packed = pack(directory)
        pack_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # Rounds alternate which goes first: the second PUT lands beside the first's bytes in the in-memory server.
        if round_ % 2:
            floor = put_raw(emulator, bucket, packed)
            ours, upload_peak = put_ours(bucket, packed)
        else:
            ours, upload_peak = put_ours(bucket, packed)
            floor = put_raw(emulator, bucket, packed)
        stored = bucket.get_blob(f"uploads/ml/models/m/{packed.md5}.tar.gz")
        assert stored is not None and stored.size == packed.size, "the upload did not arrive whole"
        return {"ours_s": ours, "floor_s": floor, "ratio": floor / ours, "mb": packed.size / 2**20,
                "pack_peak_mb": pack_peak / 2**20, "upload_peak_mb": upload_peak / 2**20}


def median(rounds: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def main(files: int, megabytes: int) -> None:
    with fake_gcs_in_memory() as emulator:
        os.environ["STORAGE_EMULATOR_HOST"] = emulator
        client = storage.Client(project="bench", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        idle = [idle_resync(client, files, i) for i in range(ROUNDS)]
        print(f"idle re-sync of {files} files: {median(idle, 'seconds'):.2f} s, {median(idle, 'requests'):.0f} "
              f"requests ({median(idle, 'writes'):.0f} writes), {median(idle, 'hashed'):.0f} files hashed "
              f"(median of {ROUNDS})")
        sent = [upload(emulator, client, megabytes, i) for i in range(ROUNDS)]
        print(f"upload of a {median(sent, 'mb'):.0f} MiB context: ours {median(sent, 'ours_s'):.2f} s, raw PUT "
              f"{median(sent, 'floor_s'):.2f} s, throughput ratio {median(sent, 'ratio'):.2f}x; peak Python memory "
              f"pack {median(sent, 'pack_peak_mb'):.1f} MiB, upload {median(sent, 'upload_peak_mb'):.1f} MiB "
              f"(median of {ROUNDS})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, int(sys.argv[2]) if len(sys.argv) > 2 else 200)
