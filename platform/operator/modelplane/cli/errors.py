"""Errors a user can act on, each with its own exit code for scripts."""

from __future__ import annotations

import sys
from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # the build or the run failed (the message carries the log tail)
    USAGE = 2
    NO_CLUSTER = 3  # no kubeconfig, no current context, or the API server does not answer
    NO_CRDS = 4  # the cluster has no modelplane CRDs
    REFUSED = 5  # the platform refused the object (invalid spec, GPU type not offered)
    TIMEOUT = 6  # the operator did not answer in time (is it running?)
    UPLOAD = 7  # the upload failed (expired URL twice, network)
    INTERRUPTED = 130


class CliError(Exception):
    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code


def warn(message: str) -> None:
    """Something not done that the user should know of (a file not synced or not packed): on stderr, even with -q."""
    print(f"warning: {message}", file=sys.stderr)
