"""Pack a directory into a build context: what `docker build` would send, byte-for-byte reproducible.

The files are those modelplane.cli.ignore leaves (`.dockerignore` with Docker's rules, else the `.gitignore` files),
plus the Dockerfile and the ignore file themselves: like the Docker CLI, which sends them even when they are ignored,
since the builder needs them; BuildKit in the cluster applies the ignore file again, so COPY sees what Docker's
would. Symlinks are not followed: they are left out and listed in `skipped`, to be reported.

Reproducible (sorted entries, zeroed times and owners) so the same files give the same MD5, and an unchanged
directory is never uploaded twice. Streamed: each file is read in blocks into a compressed temporary file, its MD5
taken on the way, so memory stays bounded whatever the size of the context (the upload streams from that file).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from modelplane.cli.errors import CliError, Exit
from modelplane.cli.ignore import DOCKERIGNORE_FILES, scan
from modelplane.cli.paths import open_regular

DOCKERFILE = "Dockerfile"  # the builder reads the context's top-level Dockerfile: build.upload has no path option
BUILD_FILES = (DOCKERFILE, *DOCKERIGNORE_FILES)


@dataclass(frozen=True)
class Packed:
    file: IO[bytes]  # the gzipped tarball: an anonymous temporary file, gone when it is closed or the process ends
    size: int
    md5: str
    files: tuple[str, ...]
    skipped: tuple[str, ...]  # symlinks and other non-regular files, not followed


class _Hashing:
    """A file that takes the MD5 of what is written to it."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file, self.md5, self.size = file, hashlib.md5(), 0

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def _sent(path: Path) -> bool:
    """A build file goes when it is a regular file (a symlink is not followed)."""
    return path.is_file() and not path.is_symlink()


def has_dockerfile(directory: Path) -> bool:
    """Whether the packed context will hold the Dockerfile the build needs."""
    return _sent(directory / DOCKERFILE)


def pack(directory: Path) -> Packed:
    listing = scan(directory)
    build_files = (name for name in BUILD_FILES if _sent(directory / name))
    files = sorted(set(listing.files).union(build_files))
    out = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the caller in Packed, read by the upload)
    hashing = _Hashing(out)
    with gzip.GzipFile(fileobj=hashing, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w") as tar:
        for name in files:
            try:
                with open_regular(directory / name) as content:
                    info = tarfile.TarInfo(name)
                    status = os.fstat(content.fileno())
                    info.size = status.st_size
                    info.mode = 0o755 if status.st_mode & 0o111 else 0o644
                    tar.addfile(info, content)
            except OSError as error:  # unreadable, or replaced by a symlink since the walk
                out.close()
                raise CliError(Exit.USAGE, f"cannot pack {directory / name}: {error.strerror or error}") from error
    out.seek(0)
    return Packed(file=out, size=hashing.size, md5=hashing.md5.hexdigest(), files=tuple(files),
                  skipped=listing.skipped)
