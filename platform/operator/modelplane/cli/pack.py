"""Pack a directory into a build context: .dockerignore and .gitignore honoured, byte-for-byte reproducible.

Reproducible (sorted entries, zeroed times and owners) so the same files give the same MD5, and an unchanged
directory is never uploaded twice.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pathspec

IGNORE_FILES = (".dockerignore", ".gitignore")
ALWAYS_IGNORED = (".git/", ".modelplane-sync.json")


@dataclass(frozen=True)
class Packed:
    data: bytes
    md5: str
    files: tuple[str, ...]


def ignore_spec(directory: Path) -> pathspec.GitIgnoreSpec:
    lines = list(ALWAYS_IGNORED)
    for name in IGNORE_FILES:
        path = directory / name
        if path.is_file():
            lines += path.read_text().splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def included(directory: Path) -> list[str]:
    """Files of `directory` that are not ignored, as sorted relative POSIX paths."""
    spec = ignore_spec(directory)
    paths = (p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and not p.is_symlink())
    return sorted(p for p in paths if not spec.match_file(p))


def pack(directory: Path) -> Packed:
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    files = included(directory)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for name in files:
            path = directory / name
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            with path.open("rb") as content:
                tar.addfile(info, content)
    data = buffer.getvalue()
    return Packed(data=data, md5=hashlib.md5(data).hexdigest(), files=tuple(files))
