"""What every plugin shares: kubectl's connection flags, the exit codes in --help, inputs checked before any cluster
call, and one way to end (a message and an exit code, never a traceback)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from modelplane.cli.errors import CliError, Exit, exit_codes_help

UNEXPECTED = "this is a bug in the plugin"  # in the last resort's message only: tests check known failures lack it


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """A plugin's parser: kubectl's own -n, --context and --kubeconfig (modelplane.cli.kubeconfig reads them by
    kubectl's rules), and the exit codes after the options."""
    made = argparse.ArgumentParser(prog=prog, description=description, epilog=exit_codes_help(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    made.add_argument("-n", "--namespace", help="namespace (default: the context's, else `default`)")
    made.add_argument("--context", help="kubeconfig context (default: the current one; an unknown one is an error)")
    made.add_argument("--kubeconfig", help="kubeconfig file (default: the files of $KUBECONFIG, else ~/.kube/config)")
    return made


def read_manifest(path: str, kinds: Sequence[str]) -> dict[str, Any]:
    """The one object of `kinds` in the file `-f path`, or a usage error (Exit.USAGE) naming what is wrong."""
    try:
        obj = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(Exit.USAGE, f"-f {path}: {getattr(error, 'strerror', None) or error}") from error
    except yaml.YAMLError as error:
        raise CliError(Exit.USAGE, f"-f {path}: not one YAML document: {error}".replace("\n", " ")) from error
    if not (isinstance(obj, dict) and obj.get("kind") in kinds and isinstance(obj.get("metadata"), dict)
            and obj["metadata"].get("name") and isinstance(obj.setdefault("spec", {}), dict)):
        raise CliError(Exit.USAGE, f"-f {path}: expected one {' or '.join(kinds)} with metadata.name and a spec")
    return obj


def finish(body: Callable[[], int]) -> int:
    """Run a plugin: a CliError ends it with its message and code, Ctrl-C with 130 (cleanup has run on the way out);
    anything else is a bug, reported in one line with exit 1 as a last resort (no traceback on a user's screen)."""
    try:
        return body()
    except CliError as error:
        print(f"error: {error}".replace("\n", " "), file=sys.stderr)
        return int(error.code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)
    except Exception as error:
        print(f"error: {type(error).__name__}: {error} ({UNEXPECTED}; please report it)".replace("\n", " "),
              file=sys.stderr)
        return int(Exit.FAILED)
