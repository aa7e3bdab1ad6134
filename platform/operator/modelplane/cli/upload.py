"""Upload a packed build context through the signed URL the operator answers with (skipped when already stored)."""

from __future__ import annotations

import base64
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import IO, Any

from modelplane.builders.build import UPLOAD_CONTENT_TYPE
from modelplane.cli.cluster import Cluster
from modelplane.cli.errors import CliError, Exit, warn
from modelplane.cli.pack import Packed
from modelplane.storage import STORAGE_HOST

URL_TIMEOUT = 120.0


BLOCK = 1 << 20  # what one read of the body hands the connection


class _Counting:
    """The body, read from its file in blocks, reporting how much the connection has read (the upload's progress)."""

    def __init__(self, body: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self.body, self.on_bytes = body, on_bytes

    def read(self, size: int = -1) -> bytes:
        chunk = self.body.read(BLOCK if size is None or size < 0 else max(size, BLOCK))
        self.on_bytes(len(chunk))
        return chunk


def upload_target(url: str, emulator: str | None) -> tuple[str, dict[str, str]]:
    """Where to PUT the signed URL the operator answered with, and the Host header to send, or refused (Exit.UPLOAD).

    The URL comes from the object's status, which others than the operator may be able to write, and what is sent is
    the user's code: so it goes to Cloud Storage over https, nowhere else. The one setting aside is
    STORAGE_EMULATOR_HOST, the variable google-cloud-storage honours too (tests run fake-gcs-server): when it is set,
    the request goes to the emulator, and a URL naming the emulator's host is accepted as well.
    """
    parts = urllib.parse.urlsplit(url)
    scheme, _, host = emulator.rpartition("://") if emulator else ("", "", "")
    if f"{parts.scheme}://{parts.netloc}" == STORAGE_HOST:  # what the operator signs for
        if not host:
            return url, {}
        return urllib.parse.urlunsplit((scheme or "http", host, parts.path, parts.query, "")), {"Host": parts.netloc}
    if host and parts.netloc == host and parts.scheme in ("http", "https"):
        return url, {}
    raise CliError(Exit.UPLOAD, f"refusing to upload to {parts.scheme}://{parts.netloc}: signed upload URLs are "
                                f"{STORAGE_HOST}" + (f" (or the emulator at {host})" if host else ""))


def put(url: str, body: IO[bytes], size: int, md5_hex: str, on_bytes: Callable[[int], None] = lambda _: None) -> None:
    """PUT `size` bytes of `body`, from where it stands, to a signed URL, once upload_target() accepts it; streamed,
    so memory stays bounded."""
    target, headers = upload_target(url, os.environ.get("STORAGE_EMULATOR_HOST"))
    headers.update({"Content-Type": UPLOAD_CONTENT_TYPE, "Content-Length": str(size),
                    "Content-MD5": base64.b64encode(bytes.fromhex(md5_hex)).decode()})
    request = urllib.request.Request(target, data=_Counting(body, on_bytes), method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=600):
        pass


def answers(request_id: str) -> Callable[[dict[str, Any]], bool]:
    """Whether an object's status answers this upload request."""
    return lambda obj: ((obj.get("status") or {}).get("buildUpload") or {}).get("requestID") == request_id


def upload_and_build(cluster: Cluster, obj: dict[str, Any], packed: Packed, report: Callable[[str], None],
                     on_bytes: Callable[[int], None] = lambda _: None) -> dict[str, Any]:
    """Apply `obj` with build.upload for `packed`, upload it unless the bucket has it, and return the object."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    for skipped in packed.skipped:
        warn(f"not packed: {skipped} (a symlink or special file, not followed)")
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
        report(f"uploading {packed.size:,} bytes ({len(packed.files)} files)")
        try:
            packed.file.seek(0)
            put(upload["url"], packed.file, packed.size, packed.md5, on_bytes)
        except urllib.error.HTTPError as error:
            if error.code in (400, 403) and attempt == 0:
                report("the upload URL expired; asking for a new one")
                continue
            raise CliError(Exit.UPLOAD, f"upload failed: HTTP {error.code} {error.reason}") from error
        except OSError as error:  # urllib's URLError, a timeout, a dropped connection
            raise CliError(Exit.UPLOAD, f"upload failed: {getattr(error, 'reason', None) or error}") from error
        report("uploaded")
        return answered
    raise CliError(Exit.UPLOAD, "the upload URL expired twice")
