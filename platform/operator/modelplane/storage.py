"""The artifacts bucket as the operator sees it: what an object's prefix holds, and deleting it on request.

Uses google-cloud-storage with the operator's Workload Identity credentials (no key), or any endpoint named by
STORAGE_EMULATOR_HOST (fake-gcs-server in tests).
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import google.auth.credentials
import google.auth.transport.requests
from google.cloud import storage

from modelplane.api.common import Artifacts

FIRST_FILES = 20


def human_size(size: int) -> str:
    """Bytes as a Kubernetes-style binary quantity: 1536 -> 1.5Ki, 13.5 GiB -> 13.5Gi."""
    units = ("", "Ki", "Mi", "Gi", "Ti", "Pi")
    value, step = float(size), 0
    while value >= 1024 and step < len(units) - 1:
        value, step = value / 1024, step + 1
    text = f"{value:.0f}" if value >= 100 else f"{value:.1f}".removesuffix(".0")
    return text + units[step]


class ArtifactStore:
    def __init__(self, client: storage.Client, bucket: str) -> None:
        self.bucket = client.bucket(bucket)

    def summarize(self, prefix: str, manifest: list[dict[str, Any]] | None = None) -> Artifacts:
        """The prefix's file count, total size and first file names (relative to the prefix); from `manifest` when
        the caller listed the prefix already (one listing, not two)."""
        files = self.manifest(prefix) if manifest is None else manifest
        total = sum(f["size"] for f in files)
        return Artifacts(url=f"gs://{self.bucket.name}/{prefix}", files=[f["name"] for f in files[:FIRST_FILES]],
                         count=len(files), size=human_size(total), bytes=total)

    def manifest(self, prefix: str) -> list[dict[str, Any]]:
        """Every file under prefix with its size and the checksums GCS keeps (names relative to the prefix, sorted;
        "directory" placeholders are not data). MD5 and CRC32C: a composite object has no MD5, so a changed file of
        the same size would otherwise look unchanged."""
        return sorted(({"name": blob.name.removeprefix(prefix), "size": blob.size or 0, "md5": blob.md5_hash or "",
                        "crc32c": blob.crc32c or ""}
                       for blob in self.bucket.client.list_blobs(self.bucket, prefix=prefix)
                       if not blob.name.endswith("/")), key=lambda f: f["name"])

    def read_json(self, name: str) -> Any:
        """The JSON document at `name`, or None when there is none (or it is not JSON)."""
        blob = self.bucket.get_blob(name)
        if blob is None:
            return None
        try:
            return json.loads(blob.download_as_bytes())
        except ValueError:
            return None

    def write(self, name: str, data: bytes) -> None:
        self.bucket.blob(name).upload_from_string(data, content_type="application/json")

    def holds(self, name: str, md5_hex: str) -> bool:
        """Whether the object exists with this MD5 (an upload is complete and intact)."""
        blob = self.bucket.get_blob(name)
        return blob is not None and blob.md5_hash is not None and base64.b64decode(blob.md5_hash).hex() == md5_hex

    def delete(self, prefix: str) -> int:
        """Delete every object under prefix (a versioned bucket keeps noncurrent copies until lifecycle expiry)."""
        blobs = list(self.bucket.client.list_blobs(self.bucket, prefix=prefix))
        for blob in blobs:
            blob.delete()
        return len(blobs)


UPLOAD_TTL = datetime.timedelta(minutes=15)
STORAGE_HOST = "https://storage.googleapis.com"  # signed URLs always name the real endpoint


class UploadSigner:
    """Signs V4 PUT URLs for build uploads, bound to the tarball's MD5 and content type.

    Signing credentials (a key, in tests) sign locally; the operator's Workload Identity has no key, so its URLs are
    signed by IAM signBlob on its own service account (roles/iam.serviceAccountTokenCreator on itself).
    """

    def __init__(self, bucket: storage.Bucket, credentials: google.auth.credentials.Credentials) -> None:
        self.bucket, self.credentials = bucket, credentials

    def sign_put(self, name: str, md5_hex: str, content_type: str,
                 now: datetime.datetime) -> tuple[str, datetime.datetime]:
        md5 = base64.b64encode(bytes.fromhex(md5_hex)).decode()
        signing: dict[str, object]
        if isinstance(self.credentials, google.auth.credentials.Signing):
            signing = {"credentials": self.credentials}
        else:
            self.credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
            signing = {"service_account_email": self.credentials.service_account_email,  # type: ignore[attr-defined]
                       "access_token": self.credentials.token}
        url = self.bucket.blob(name).generate_signed_url(
            version="v4", expiration=UPLOAD_TTL, method="PUT", content_type=content_type,
            headers={"Content-MD5": md5}, api_access_endpoint=STORAGE_HOST, **signing)
        return url, now + UPLOAD_TTL
