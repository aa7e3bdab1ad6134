"""Two-way sync between a local directory and a Notebook's workspace in the bucket.

Each side's change since the last sync (recorded in .modelplane-sync.json) goes to the other, deletions included.
The rule for a file changed on both sides: the notebook's version wins in place and the local version is kept beside
it as `<name>.local-conflict`, so nothing local is ever lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from google.cloud import storage

from modelplane.cli.pack import included

STATE_FILE = ".modelplane-sync.json"
CONFLICT_SUFFIX = ".local-conflict"


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    deleted_remote: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((self.uploaded, self.downloaded, self.deleted_local, self.deleted_remote, self.conflicts))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sync(directory: Path, bucket: storage.Bucket, prefix: str) -> SyncResult:
    state_path = directory / STATE_FILE
    state: dict[str, str] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    local = {name: _md5(directory / name) for name in included(directory)}
    blobs = {blob.name.removeprefix(prefix): blob for blob in bucket.client.list_blobs(bucket, prefix=prefix)
             if not blob.name.endswith("/")}
    remote = {name: base64.b64decode(blob.md5_hash or "").hex() for name, blob in blobs.items()}
    result, synced = SyncResult(), {}

    def upload(name: str) -> None:
        bucket.blob(prefix + name).upload_from_filename(str(directory / name))
        result.uploaded.append(name)

    def download(name: str) -> None:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        blobs[name].download_to_filename(str(target))
        result.downloaded.append(name)

    for name in sorted(set(local) | set(remote) | set(state)):
        here, there, before = local.get(name), remote.get(name), state.get(name)
        if here != there:
            if here != before and there == before:  # changed (or deleted) here only
                if here is None:
                    blobs[name].delete()
                    result.deleted_remote.append(name)
                else:
                    upload(name)
            elif there != before and here == before:  # changed (or deleted) in the notebook only
                if there is None:
                    (directory / name).unlink()
                    result.deleted_local.append(name)
                else:
                    download(name)
            elif there is None:  # deleted there, edited here: keep the edit
                upload(name)
            elif here is None:  # deleted here, edited there: keep the edit
                download(name)
            else:  # edited on both sides
                (directory / name).rename(directory / (name + CONFLICT_SUFFIX))
                download(name)
                result.conflicts.append(name)
        final = _md5(directory / name) if (directory / name).is_file() else None
        if final:
            synced[name] = final
    state_path.write_text(json.dumps(synced, indent=1, sort_keys=True))
    return result
