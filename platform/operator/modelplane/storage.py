"""The artifacts bucket as the operator sees it: what an object's prefix holds, and deleting it on request.

Uses google-cloud-storage with the operator's Workload Identity credentials (no key), or any endpoint named by
STORAGE_EMULATOR_HOST (fake-gcs-server in tests).
"""

from __future__ import annotations

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

    def summarize(self, prefix: str) -> Artifacts:
        """The prefix's file count, total size and first file names (relative to the prefix)."""
        count = total = 0
        files: list[str] = []
        for blob in self.bucket.client.list_blobs(self.bucket, prefix=prefix):
            if blob.name.endswith("/"):
                continue  # a "directory" placeholder, not data
            count += 1
            total += blob.size or 0
            if len(files) < FIRST_FILES:
                files.append(blob.name.removeprefix(prefix))
        return Artifacts(url=f"gs://{self.bucket.name}/{prefix}", files=files, count=count, size=human_size(total),
                         bytes=total)

    def delete(self, prefix: str) -> int:
        """Delete every object under prefix (a versioned bucket keeps noncurrent copies until lifecycle expiry)."""
        blobs = list(self.bucket.client.list_blobs(self.bucket, prefix=prefix))
        for blob in blobs:
            blob.delete()
        return len(blobs)
