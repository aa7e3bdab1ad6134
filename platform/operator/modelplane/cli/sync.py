"""Two-way sync between a local directory and a Notebook's workspace in the bucket.

Each side's change since the last sync (recorded in .modelplane-sync.json) goes to the other, deletions included.
The rule for a file changed on both sides: the notebook's version wins in place and the local version is kept beside
it as `<name>.local-conflict`, so nothing local is ever lost.

The bucket is not trusted with the laptop: anything holding the tenant's workload identity can write the workspace.
So an object whose name would lead outside the directory, or through a symlink in it, is refused and reported, never
written (modelplane.cli.paths); `.git` and the sync's own state are never fetched (modelplane.cli.ignore); and a name
the directory's ignore files ignore is left alone on both sides, never deleted because it is missing on one.
A local symlink is never followed: not to upload what it points to, not to write a download through it.

Files stream: hashed and uploaded from the open file, downloaded into a partial file renamed into place when
complete. An idle sync hashes nothing: a file whose size and mtime are those recorded keeps its recorded MD5 (as
rsync's quick check), unless it was modified within SETTLED_NS of being hashed, when a second change could have
kept both (git's "racy" entries).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from google.api_core.exceptions import GoogleAPIError
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from modelplane.cli.ignore import PARTIAL_PREFIX, SYNC_STATE, scan
from modelplane.cli.paths import UnsafeNameError, create_regular, inside, open_regular, unsafe_reason

STATE_FILE = SYNC_STATE
CONFLICT_SUFFIX = ".local-conflict"
SETTLED_NS = 2_000_000_000  # the coarsest mtime a filesystem keeps (FAT's 2 s)
# What may go wrong with one name without stopping the others: it is reported and tried again next time.
NAME_ERRORS = (UnsafeNameError, OSError, GoogleAPIError, DataCorruption, InvalidResponse)


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    deleted_remote: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # name: why it was not synced (the others were)

    @property
    def changed(self) -> bool:
        return any((self.uploaded, self.downloaded, self.deleted_local, self.deleted_remote, self.conflicts))


@dataclass(frozen=True)
class Entry:
    """A local file as hashed: its MD5, and its (size, mtime_ns) when they may vouch for that MD5 next time."""

    md5: str
    stat: tuple[int, int] | None = None

    @classmethod
    def of(cls, path: Path, last: Entry | None = None) -> Entry:
        status = path.lstat()
        key = (status.st_size, status.st_mtime_ns)
        if last is not None and last.stat == key:
            return last
        started = time.time_ns()
        with open_regular(path) as file:
            md5 = hashlib.file_digest(file, "md5").hexdigest()
            status = os.fstat(file.fileno())
        # Any write since `started` shows as an mtime no older than started - SETTLED_NS: an older one vouches for
        # what was hashed; a newer one might not change with the next write, so it vouches for nothing.
        key = (status.st_size, status.st_mtime_ns)
        return cls(md5, key if started - status.st_mtime_ns > SETTLED_NS else None)

    @classmethod
    def from_json(cls, value: Any) -> Entry:
        if isinstance(value, str):  # a state file written before sizes and mtimes were kept
            return cls(value)
        return cls(value["md5"], tuple(value["stat"]) if value.get("stat") else None)

    def to_json(self) -> dict[str, Any]:
        return {"md5": self.md5, "stat": list(self.stat) if self.stat else None}


def write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `target` through a partial file beside it, renamed into place only when complete.

    The rename replaces a symlink at `target` rather than following it (the callers refuse one anyway).
    """
    partial = target.with_name(PARTIAL_PREFIX + secrets.token_hex(8))
    try:
        with create_regular(partial) as file:
            write(file)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_state(directory: Path) -> dict[str, Entry]:
    path = inside(directory, STATE_FILE)
    if not path.is_file():
        return {}
    return {name: Entry.from_json(value) for name, value in json.loads(path.read_text()).items()}


def write_state(directory: Path, state: dict[str, Entry]) -> None:
    text = json.dumps({name: entry.to_json() for name, entry in state.items()}, indent=1, sort_keys=True)
    write_atomically(inside(directory, STATE_FILE), lambda file: file.write(text.encode()))


def sync(directory: Path, bucket: storage.Bucket, prefix: str) -> SyncResult:
    result = SyncResult()
    listing = scan(directory)
    skipped = dict.fromkeys(listing.skipped, "a symlink or special file here (not followed)")

    def carried(name: str) -> bool:
        """Whether the sync carries this name: safe (else it is reported), readable here, not ignored."""
        reason = unsafe_reason(name)
        if reason:
            result.refused[name] = reason
        return reason is None and name not in skipped and not listing.ignores(name)

    recorded = read_state(directory)
    local = {}
    for name in listing.files:
        try:
            if carried(name):
                local[name] = Entry.of(directory / name, recorded.get(name))
        except OSError as error:  # gone or unreadable since the walk: not a deletion, just not this time
            skipped[name] = f"not readable: {error}"
    result.refused.update(skipped)
    state = {name: entry for name, entry in recorded.items() if carried(name)}
    blobs = {name: blob for blob in bucket.client.list_blobs(bucket, prefix=prefix)
             if not (name := blob.name.removeprefix(prefix)).endswith("/")  # a directory marker (GCS FUSE)
             and carried(name)}
    remote = {name: base64.b64decode(blob.md5_hash or "").hex() for name, blob in blobs.items()}

    def upload(name: str, entry: Entry) -> Entry:
        with open_regular(inside(directory, name)) as file:
            bucket.blob(prefix + name).upload_from_file(file, size=os.fstat(file.fileno()).st_size)
        result.uploaded.append(name)
        return entry

    def download(name: str) -> Entry:
        target = inside(directory, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(target, blobs[name].download_to_file)
        result.downloaded.append(name)
        return Entry.of(target)

    def reconcile(name: str) -> Entry | None:
        """Carry this name's change across; the entry it ends with locally, if any."""
        here, there, before = local.get(name), remote.get(name), state.get(name)
        here_md5, before_md5 = here.md5 if here else None, before.md5 if before else None
        if here_md5 == there:
            return here
        if there == before_md5:  # changed (or deleted) here only
            if here is None:
                blobs[name].delete()
                result.deleted_remote.append(name)
                return None
            return upload(name, here)
        if here_md5 == before_md5:  # changed (or deleted) in the notebook only
            if there is None:
                inside(directory, name).unlink()
                result.deleted_local.append(name)
                return None
            return download(name)
        if here is None:  # deleted here, edited there: keep the edit
            return download(name)
        if there is None:  # deleted there, edited here: keep the edit
            return upload(name, here)
        inside(directory, name).rename(inside(directory, name + CONFLICT_SUFFIX))  # edited on both sides
        result.conflicts.append(name)
        return download(name)

    synced = {name: recorded[name] for name in skipped if name in recorded}  # left as they were
    for name in sorted(set(local) | set(remote) | set(state)):
        try:
            final = reconcile(name)
        except NAME_ERRORS as error:
            result.refused[name] = str(error)
            final = state.get(name)  # as if nothing happened: the same change is seen, and tried, next time
        if final is not None:
            synced[name] = final
    if synced != recorded:
        write_state(directory, synced)
    return result
