"""Stand-ins for command-line programs the code under test runs (pulumi, gcloud): a shell script on a PATH."""

from __future__ import annotations

import stat
from pathlib import Path


def stand_in(directory: Path, name: str, script: str) -> Path:
    """An executable `<directory>/bin/<name>` running `script` (sh); returns the bin directory to put on PATH."""
    program = directory / "bin" / name
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text(f"#!/bin/sh\n{script}")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return program.parent
