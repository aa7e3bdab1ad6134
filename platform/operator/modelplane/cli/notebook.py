"""`kubectl notebook`: Jupyter on the cluster's GPUs, with a local directory synced in and out.

    kubectl notebook -d ./my-repo                  build from ./my-repo/Dockerfile (if any), sync ./my-repo
    kubectl notebook -f notebook.yaml -d ./my-repo
    kubectl notebook NAME                          reopen an existing (suspended) notebook

While open, local edits go to the notebook's workspace and the notebook's edits come back (deletions included; on
a conflict the notebook's version wins and the local one is kept as <name>.local-conflict). Files the directory's
ignore files ignore stay where they are, on both sides; objects whose names would land outside the directory or
through a symlink are refused with a warning. Ctrl-C finishes the last sync and suspends the notebook (frees the
GPU; the workspace stays) unless --no-suspend. The URL is printed without its login token unless --show-token (a
terminal's output ends up in logs and screen shares); --open hands the browser the URL with the token.
Exit codes: see modelplane/cli/errors.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import time
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from google.cloud import storage
from rich.console import Console

from modelplane.api import GROUP, VERSION
from modelplane.cli.cluster import Cluster, ready_condition
from modelplane.cli.errors import CliError, Exit, warn
from modelplane.cli.pack import pack
from modelplane.cli.sync import SyncResult, sync
from modelplane.cli.upload import upload_and_build

READY_TIMEOUT = 3600.0
PortForward = Callable[[str, str, int], subprocess.Popen[bytes]]


def kubectl_port_forward(namespace: str, pod: str, port: int) -> subprocess.Popen[bytes]:
    """Only a port-forward reaches the notebook: it has no Service address, ingress or public IP."""
    return subprocess.Popen(["kubectl", "port-forward", "-n", namespace, f"pod/{pod}", f"{port}:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def notebook_object(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    """The Notebook to apply: from -f, from an existing NAME, or a new one named after the directory."""
    if args.filename:
        obj: dict[str, Any] = yaml.safe_load(Path(args.filename).read_text())
    elif args.name and cluster.get("Notebook", args.name) is not None:
        obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Notebook", "metadata": {"name": args.name}, "spec": {}}
    elif args.directory:
        name = args.name or re.sub(r"[^a-z0-9-]+", "-", Path(args.directory).resolve().name.lower()).strip("-")
        obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Notebook", "metadata": {"name": name or "notebook"},
               "spec": {"resources": {"gpu": {"type": args.gpu}}} if args.gpu else {}}
    else:
        raise CliError(Exit.USAGE, f"no notebook {args.name!r} here; give -d DIR or -f FILE to create one")
    spec = obj.setdefault("spec", {})
    spec["suspend"] = False
    for field, value in (("model", args.model), ("dataset", args.dataset)):
        if value:
            spec[field] = {"name": value}
    return obj


def workspace(url: str) -> tuple[storage.Bucket, str]:
    bucket, prefix = url.removeprefix("gs://").split("/", 1)
    return storage.Client().bucket(bucket), prefix


def describe(result: SyncResult) -> str:
    parts = [f"{len(items)} {label}" for label, items in (
        ("up", result.uploaded), ("down", result.downloaded), ("deleted here", result.deleted_local),
        ("deleted there", result.deleted_remote), ("conflicts", result.conflicts)) if items]
    conflicts = "".join(f"\n  conflict: {name} (yours kept as {name}.local-conflict)" for name in result.conflicts)
    return "synced: " + ", ".join(parts) + conflicts


@dataclasses.dataclass
class WorkspaceSync:
    """One sync per call, its changes logged and its problems warned of once each (not every two seconds)."""

    directory: Path
    bucket: storage.Bucket
    prefix: str
    log: Callable[[str], None]
    reported: set[str] = dataclasses.field(default_factory=set)

    def __call__(self, note: str = "") -> None:
        try:
            result = sync(self.directory, self.bucket, self.prefix)
        except CliError as error:  # e.g. an ignore file in the middle of an edit: the next sync tries again
            self.warn_once(f"sync skipped: {error}")
            return
        for refused, why in result.refused.items():
            self.warn_once(f"not synced: {refused!r}: {why}")
        if result.changed or note:
            self.log(describe(result) + note)

    def warn_once(self, problem: str) -> None:
        if problem not in self.reported:
            self.reported.add(problem)
            warn(problem)


def run(args: argparse.Namespace, cluster: Cluster, port_forward: PortForward,
        keep_running: Callable[[], bool]) -> int:
    cluster.check_platform()
    console = Console(stderr=True, quiet=args.quiet)
    obj = notebook_object(args, cluster)
    name = obj["metadata"]["name"]
    directory = Path(args.directory) if args.directory else None
    with console.status(f"notebook {name}: applying") as status:
        def progress(current: dict[str, Any]) -> None:
            ready = ready_condition(current)
            status.update(f"notebook {name}: {ready.get('reason', 'waiting')}: {ready.get('message', '')}")

        if directory and (directory / "Dockerfile").is_file():
            packed = pack(directory)
            sent = 0

            def uploaded(count: int) -> None:
                nonlocal sent
                sent += count
                status.update(f"notebook {name}: uploading {sent:,}/{len(packed.data):,} bytes")

            upload_and_build(cluster, obj, packed, console.log, uploaded)
        else:
            cluster.apply(obj)
        ready = cluster.wait("Notebook", name, lambda o: bool((o.get("status") or {}).get("ready")), READY_TIMEOUT,
                             "Ready", progress)
    facts = ready["status"]
    token = cluster.secret_value(facts["tokenSecret"], "token")
    forward = port_forward(cluster.namespace, facts["pod"], facts["port"])
    url = f"http://localhost:{facts['port']}/"
    print(f"{url}?token={token}" if args.show_token else url)
    if not args.show_token:
        console.log(f"login token: --show-token prints it, or kubectl -n {cluster.namespace} get secret "
                    f"{facts['tokenSecret']} -o jsonpath='{{.data.token}}' | base64 -d")
    if args.open:
        webbrowser.open(f"{url}?token={token}")
    try:
        synced = WorkspaceSync(directory, *workspace(facts["workspace"]), console.log) if directory else None
        try:
            while keep_running():
                if synced:
                    synced()
                time.sleep(args.sync_interval)
        except KeyboardInterrupt:
            pass
        if synced:
            synced(" (final)")
    finally:
        forward.terminate()
        if not args.no_suspend:
            cluster.patch_spec("Notebook", name, {"suspend": True})
            console.log(f"notebook {name} suspended (its GPU is free; `kubectl notebook {name}` reopens it)")
    return Exit.OK


def main(argv: Sequence[str] | None = None, cluster: Cluster | None = None,
         port_forward: PortForward = kubectl_port_forward, keep_running: Callable[[], bool] = lambda: True) -> int:
    parser = argparse.ArgumentParser(prog="kubectl notebook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="the Notebook (default: named after DIR)")
    parser.add_argument("-d", "--directory", help="local directory to sync (and build from, if it has a Dockerfile)")
    parser.add_argument("-f", "--filename", help="a Notebook manifest")
    parser.add_argument("--model", help="a Model to mount read-only at /content/model")
    parser.add_argument("--dataset", help="a Dataset to mount read-only at /content/data")
    parser.add_argument("--gpu", default="nvidia-l4", help="GPU type for a new notebook (default nvidia-l4)")
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--no-suspend", action="store_true", help="leave the notebook running on exit")
    parser.add_argument("--open", action="store_true", help="open the notebook in a browser")
    parser.add_argument("--show-token", action="store_true",
                        help="print the URL with its login token (by default the token stays off stdout)")
    parser.add_argument("--sync-interval", type=float, default=2.0, help="seconds between syncs (default 2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the notebook's URL (and warnings)")
    args = parser.parse_args(argv)
    if not (args.name or args.directory or args.filename):
        parser.error("give NAME, -d DIR or -f FILE")
    try:
        return run(args, cluster or Cluster.from_kubeconfig(args.namespace, args.context), port_forward,
                   keep_running)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.code)
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
