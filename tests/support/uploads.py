"""A PUT to a V4 signed URL as a client makes it, sent to fake-gcs-server."""

from __future__ import annotations

import os
import urllib.parse
import urllib.request


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
