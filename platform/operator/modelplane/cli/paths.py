"""Names from the workspace bucket, turned into paths that stay inside the synced directory.

Anything holding the tenant's workload identity can write objects to the workspace, so an object name is untrusted
input: `../x`, `//etc/x` or `a/../../b` would otherwise be written outside the directory on the user's laptop. A
name is taken only in its one canonical form, relative and segment by segment, and the local path it names is used
only when no part of it below the directory is a symlink (a symlink would lead a write, or a read, elsewhere).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

_DRIVE = re.compile(r"[A-Za-z]:")
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; Windows has no O_NOFOLLOW, and inside() checks there too


class UnsafeNameError(ValueError):
    """A name the sync refuses to turn into a local path; the message says why (the caller names the name)."""


def unsafe_reason(name: str) -> str | None:
    """Why `name` is not a plain relative POSIX path of files and directories, or None when it is."""
    if not name:
        return "empty name"
    if "\0" in name:
        return "NUL in the name"
    if "\\" in name:
        return "backslash in the name (a path separator on Windows)"
    if name.startswith("/"):
        return "absolute name"
    segments = name.split("/")
    if _DRIVE.match(segments[0]):
        return "Windows drive letter"
    if "" in segments:
        return "empty segment (//)"
    if "." in segments or ".." in segments:
        return "'.' or '..' segment"
    return None


def inside(root: Path, name: str) -> Path:
    """`root/name`, refused when the name is unsafe or a part of it that exists below `root` is a symlink.

    `root` itself is the user's choice and may be a symlink; what lies below it is checked with lstat, which never
    follows a link.
    """
    reason = unsafe_reason(name)
    if reason:
        raise UnsafeNameError(reason)
    path = root
    for segment in name.split("/"):
        path = path / segment
        if path.is_symlink():
            raise UnsafeNameError(f"{path.relative_to(root).as_posix()} is a symlink here (not followed)")
    return path


def open_regular(path: Path) -> io.BufferedReader:
    """Open a file for reading, refusing (OSError) a symlink put in its place since it was listed."""
    return os.fdopen(os.open(path, os.O_RDONLY | NOFOLLOW), "rb")


def create_regular(path: Path) -> io.BufferedWriter:
    """Create a new file for writing: never an existing one, never through a symlink (mode 0666 less the umask)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666), "wb")
