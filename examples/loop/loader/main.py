"""Reference loader of the retraining loop: copies one version of a training feed into the run's artifacts.

Param `source` (params.json, or the PARAM_SOURCE env var) names the feed version:
    a local directory, or file:///path/to/dir   every regular file directly in it (e.g. train.csv), and eval.csv
                                                from the directory or, if it has none, from its parent (a feed laid
                                                out as <feed>/eval.csv beside <feed>/v1/, <feed>/v2/, ...)
    a local .csv file, or file:///path/x.csv    saved as train.csv (eval.csv beside it, if there is one)
    http(s)://host/path.csv                     downloaded and saved as train.csv
Param `eval` (optional) names the eval CSV explicitly (a path or a URL), overriding the lookup above.

Files are copied byte for byte, so loading an unchanged feed again yields identical files (and an empty data diff).
Every CSV must have a header row with a `label` column. Output goes to $MODELPLANE_CONTENT/artifacts (default
/content/artifacts). Exit status 2 means a missing or malformed source, with the reason on stderr.
"""

from __future__ import annotations

import io
import json
import os
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

LABEL = "label"
TIMEOUT = 60  # seconds per HTTP request


class SourceError(Exception):
    """The feed cannot be read: the run fails with this message."""


def content_root() -> Path:
    return Path(os.environ.get("MODELPLANE_CONTENT") or "/content")


def read_params(root: Path) -> dict[str, Any]:
    path = root / "params.json"
    if not path.is_file():
        return {}
    try:
        params = json.loads(path.read_text())
    except ValueError as error:
        raise SourceError(f"{path} is not JSON: {error}") from None
    if not isinstance(params, dict):
        raise SourceError(f"{path} is not a JSON object")
    return params


def param(params: dict[str, Any], key: str) -> str:
    value = params.get(key, os.environ.get(f"PARAM_{key.upper()}", ""))
    return value if isinstance(value, str) else ""


def local_path(source: str) -> Path | None:
    """The local path a source names (a path or a file:// URL), or None for an http(s) URL."""
    scheme = urllib.parse.urlsplit(source).scheme
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(source).path))
    if scheme and len(scheme) > 1:  # one letter: a Windows drive
        raise SourceError(f"source {source!r}: only local paths, file://, http:// and https:// are supported")
    return Path(source)


def fetch(source: str) -> bytes:
    """The bytes of one file: a local path, a file:// URL or an http(s) URL."""
    path = local_path(source)
    try:
        if path is not None:
            return path.read_bytes()
        with urllib.request.urlopen(source, timeout=TIMEOUT) as response:
            data: bytes = response.read()
            return data
    except OSError as error:  # urllib's URLError and HTTPError are OSErrors
        raise SourceError(f"cannot read {source}: {error}") from None


def check_csv(name: str, data: bytes) -> None:
    first = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if LABEL not in [column.strip() for column in first.split(",")]:
        raise SourceError(f"{name}: the header row {first[:200]!r} has no {LABEL!r} column")


def files_of(source: str, eval_source: str) -> dict[str, bytes]:
    """The files of the feed version, by name in the artifacts."""
    files: dict[str, bytes] = {}
    beside: Path | None  # where an eval.csv beside the source would be
    path = local_path(source)
    if path is not None and path.is_dir():
        for entry in sorted(path.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                files[entry.name] = fetch(str(entry))
        if not files:
            raise SourceError(f"source {source} is an empty directory")
        beside = path.parent / "eval.csv"
    elif path is not None and not path.exists():
        raise SourceError(f"source {source} does not exist")
    else:
        files["train.csv"] = fetch(source)
        beside = path.parent / "eval.csv" if path is not None else None
    if eval_source:
        files["eval.csv"] = fetch(eval_source)
    elif "eval.csv" not in files and beside is not None and beside.is_file():
        files["eval.csv"] = fetch(str(beside))
    for name, data in files.items():
        if name.endswith(".csv"):
            check_csv(name, data)
    return files


def load(root: Path) -> dict[str, bytes]:
    params = read_params(root)
    source = param(params, "source")
    if not source:
        raise SourceError("param `source` is required: a directory, a file:// URL or an http(s):// URL of a CSV")
    files = files_of(source, param(params, "eval"))
    artifacts = root / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    print(f"loading dataset version {os.environ.get('MODELPLANE_DATASET_VERSION') or '(unnamed)'} from {source}")
    for name, data in sorted(files.items()):
        (artifacts / name).write_bytes(data)
        rows = len(data.splitlines()) - 1 if name.endswith(".csv") else None
        print(f"  {name}: {len(data)} bytes" + (f", {rows} rows" if rows is not None else ""))
    if "eval.csv" not in files:
        print("  no eval.csv in the source: a trainer on this dataset needs one")
    return files


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):  # keep the log in order when stdout is a file or a pipe
        sys.stdout.reconfigure(line_buffering=True)
    try:
        load(content_root())
    except SourceError as error:
        print(f"loader: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
