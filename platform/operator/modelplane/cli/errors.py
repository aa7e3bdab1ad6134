"""Errors a user can act on, each with its own exit code for scripts."""

from __future__ import annotations

import sys
from enum import IntEnum


class Exit(IntEnum):
    """Each code with what it means, in one place: the plugins' --help lists them from here."""

    meaning: str

    def __new__(cls, code: int, meaning: str) -> Exit:
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    OK = 0, "ok"
    FAILED = 1, "the build or the run failed (the message carries the log tail)"
    USAGE = 2, "usage: bad arguments, a missing or invalid file (checked before any cluster call)"
    NO_CLUSTER = 3, ("no cluster: no kubeconfig or context, an unknown --context, no credentials, or the API server "
                     "does not answer")
    NO_CRDS = 4, "the cluster has no modelplane CRDs"
    REFUSED = 5, "the platform refused the object (invalid spec, GPU type not offered, quota)"
    TIMEOUT = 6, "the operator did not answer in time (is it running?)"
    UPLOAD = 7, "the upload failed (expired URL twice, network)"
    INTERRUPTED = 130, "interrupted (Ctrl-C)"


def exit_codes_help() -> str:
    """The exit codes as --help shows them."""
    return "exit codes:\n" + "\n".join(f"  {code.value:<4} {code.meaning}" for code in Exit)


class CliError(Exception):
    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code


def warn(message: str) -> None:
    """Something not done that the user should know of (a file not synced or not packed): on stderr, even with -q."""
    print(f"warning: {message}", file=sys.stderr)
