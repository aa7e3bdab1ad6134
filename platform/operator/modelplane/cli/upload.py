"""Upload a packed build context through the signed URL the operator answers with (skipped when already stored)."""

from __future__ import annotations

import base64
import io
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from modelplane.builders.build import UPLOAD_CONTENT_TYPE
from modelplane.cli.cluster import Cluster
from modelplane.cli.errors import CliError, Exit
from modelplane.cli.pack import Packed

URL_TIMEOUT = 120.0


class _Counting(io.BytesIO):
    """The body, reporting how much of it the connection has read (the upload's progress)."""

    def __init__(self, data: bytes, on_bytes: Callable[[int], None]) -> None:
        super().__init__(data)
        self.on_bytes = on_bytes

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.on_bytes(len(chunk))
        return chunk


def put(url: str, data: bytes, md5_hex: str, on_bytes: Callable[[int], None] = lambda _: None) -> None:
    """PUT to a signed URL. Like google-cloud-storage, honour STORAGE_EMULATOR_HOST (fake-gcs-server in tests)."""
    target, headers = url, {"Content-Type": UPLOAD_CONTENT_TYPE,
                            "Content-MD5": base64.b64encode(bytes.fromhex(md5_hex)).decode()}
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        parts = urllib.parse.urlsplit(url)
        target = urllib.parse.urlunsplit(("http", emulator.removeprefix("http://"), parts.path, parts.query, ""))
        headers["Host"] = parts.netloc
    headers["Content-Length"] = str(len(data))
    request = urllib.request.Request(target, data=_Counting(data, on_bytes), method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=600):
        pass


def answers(request_id: str) -> Callable[[dict[str, Any]], bool]:
    """Whether an object's status answers this upload request."""
    return lambda obj: ((obj.get("status") or {}).get("buildUpload") or {}).get("requestID") == request_id


def upload_and_build(cluster: Cluster, obj: dict[str, Any], packed: Packed, report: Callable[[str], None],
                     on_bytes: Callable[[int], None] = lambda _: None) -> dict[str, Any]:
    """Apply `obj` with build.upload for `packed`, upload it unless the bucket has it, and return the object."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    for attempt in range(2):  # a second attempt only when the signed URL expired before the upload finished
        request_id = secrets.token_hex(6)
        spec = {key: value for key, value in obj["spec"].items() if key != "image"}
        spec["build"] = {"upload": {"md5": packed.md5, "requestID": request_id}}
        cluster.apply({**obj, "spec": spec})
        answered = cluster.wait(kind, name, answers(request_id), URL_TIMEOUT, "signed upload URL")
        upload = answered["status"]["buildUpload"]
        if upload.get("stored"):
            report(f"build context {packed.md5} is already uploaded")
            return answered
        report(f"uploading {len(packed.data):,} bytes ({len(packed.files)} files)")
        try:
            put(upload["url"], packed.data, packed.md5, on_bytes)
        except urllib.error.HTTPError as error:
            if error.code in (400, 403) and attempt == 0:
                report("the upload URL expired; asking for a new one")
                continue
            raise CliError(Exit.UPLOAD, f"upload failed: HTTP {error.code} {error.reason}") from error
        except urllib.error.URLError as error:
            raise CliError(Exit.UPLOAD, f"upload failed: {error.reason}") from error
        report("uploaded")
        return answered
    raise CliError(Exit.UPLOAD, "the upload URL expired twice")
