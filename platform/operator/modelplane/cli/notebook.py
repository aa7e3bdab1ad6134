"""`kubectl notebook`: Jupyter on the cluster's GPUs, with a local directory synced in and out.

    kubectl notebook -d ./my-repo                  build from ./my-repo/Dockerfile (if any), sync ./my-repo
    kubectl notebook -f notebook.yaml -d ./my-repo
    kubectl notebook NAME                          reopen an existing (suspended) notebook
                                                   (one suspended for idleness, spec.idle, too)

While open, local edits go to the notebook's workspace and the notebook's edits come back (deletions included; on
a conflict the notebook's version wins and the local one is kept as <name>.local-conflict). Files the directory's
ignore files ignore stay where they are, on both sides; objects whose names would land outside the directory or
through a symlink are refused with a warning. However the command ends (Ctrl-C at any point, an error, or the
end), the notebook it started is suspended (its GPU freed; the workspace stays), after a last sync if it was
open, unless --no-suspend, when it says what it left running. The URL is printed once port-forward listens,
without its login token unless --show-token (a terminal's output ends up in logs and screen shares); --open
hands the browser the URL with the token. While it syncs, it writes a heartbeat (at most once a minute) where the
operator looks for activity (status.activity): a notebook with `kubectl notebook` open is not idle.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import re
import shlex
import sys
import time
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_args

from google.api_core.exceptions import GoogleAPIError
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from rich.console import Console

from modelplane.activity.report import SYNC_HEARTBEAT
from modelplane.api import GROUP, VERSION
from modelplane.api.common import TIME_FORMAT, GpuType
from modelplane.api.notebook import IDLE_SUSPENDED_ANNOTATION, NotebookStatus
from modelplane.cli import command
from modelplane.cli.cluster import Cluster, is_ready, ready_condition
from modelplane.cli.command import read_manifest
from modelplane.cli.errors import CliError, Exit, warn
from modelplane.cli.forward import port_forward
from modelplane.cli.pack import Packed, has_dockerfile, pack
from modelplane.cli.sync import SyncResult, sync
from modelplane.cli.upload import upload_and_build

READY_TIMEOUT = 3600.0
HEARTBEAT_SECONDS = 60.0  # the operator counts idleness in minutes; a write per sync (2 s) would be waste


def notebook_object(args: argparse.Namespace, manifest: dict[str, Any] | None, cluster: Cluster) -> dict[str, Any]:
    """The Notebook to apply: from -f, from an existing NAME, or a new one named after the directory."""
    if manifest:
        obj = manifest
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


def google_storage() -> storage.Client:
    """The sync's client, made before anything starts: without credentials the notebook would take a GPU only for
    the sync to fail."""
    try:
        return storage.Client()
    except (GoogleAuthError, OSError) as error:
        raise CliError(Exit.NO_CLUSTER, f"no Google credentials for the workspace sync ({error}); run "
                                        "`gcloud auth application-default login`") from error


def workspace(client: storage.Client, url: str) -> tuple[storage.Bucket, str]:
    bucket, prefix = url.removeprefix("gs://").split("/", 1)
    return client.bucket(bucket), prefix


def describe(result: SyncResult) -> str:
    parts = [f"{len(items)} {label}" for label, items in (
        ("up", result.uploaded), ("down", result.downloaded), ("deleted here", result.deleted_local),
        ("deleted there", result.deleted_remote), ("conflicts", result.conflicts)) if items]
    conflicts = "".join(f"\n  conflict: {name} (yours kept as {name}.local-conflict)" for name in result.conflicts)
    return "synced: " + ", ".join(parts) + conflicts


def beat(heartbeat: storage.Blob) -> None:
    """The sync's heartbeat (activity.report.SyncHeartbeat): the operator counts no idleness before it."""
    now = datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)
    heartbeat.upload_from_string(json.dumps({"time": now}), content_type="application/json")


def heartbeat_of(client: storage.Client | None, activity: str | None) -> storage.Blob | None:
    """Where this notebook's sync heartbeat goes (status.activity), when the operator watches its idleness and there
    is a client."""
    if not (client and activity):
        return None
    bucket, prefix = workspace(client, activity)
    return bucket.blob(prefix + SYNC_HEARTBEAT)


def resume(cluster: Cluster, name: str, client: storage.Client | None, log: Callable[[str], None]) -> None:
    """Remove the operator's idle-suspension mark, so it runs the notebook again; a heartbeat first, so an operator
    that is suspending it at this moment sees a sync now rather than the old idleness."""
    existing = cluster.get("Notebook", name) or {}
    suspended_at = ((existing.get("metadata") or {}).get("annotations") or {}).get(IDLE_SUSPENDED_ANNOTATION)
    if suspended_at is None:
        return
    heartbeat = heartbeat_of(client, NotebookStatus.model_validate(existing.get("status") or {}).activity)
    if heartbeat:
        try:
            beat(heartbeat)
        except (GoogleAPIError, GoogleAuthError, OSError) as error:
            warn(f"no sync heartbeat ({error}): the notebook may be suspended again at once")
    cluster.remove_annotation("Notebook", name, IDLE_SUSPENDED_ANNOTATION)
    log(f"notebook {name} was suspended for idleness at {suspended_at}: resuming it")


@dataclasses.dataclass
class WorkspaceSync:
    """One sync per call, its changes logged and its problems warned of once each (not every two seconds); after a
    sync, the heartbeat when one is due."""

    directory: Path
    bucket: storage.Bucket
    prefix: str
    log: Callable[[str], None]
    heartbeat: storage.Blob | None = None
    reported: set[str] = dataclasses.field(default_factory=set)
    beaten: float | None = None  # time.monotonic() of the last heartbeat

    def __call__(self, note: str = "") -> None:
        try:
            result = sync(self.directory, self.bucket, self.prefix)
            if self.heartbeat and (self.beaten is None or time.monotonic() - self.beaten >= HEARTBEAT_SECONDS):
                beat(self.heartbeat)
                self.beaten = time.monotonic()
        # An ignore file in the middle of an edit, expired credentials, the network: the next sync tries again.
        except (CliError, GoogleAPIError, GoogleAuthError, OSError) as error:
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


def suspend_command(cluster: Cluster, name: str) -> str:
    return shlex.join(["kubectl", *cluster.target.kubectl_flags(), "patch", "notebook", name, "--type", "merge",
                       "-p", '{"spec":{"suspend":true}}'])


@dataclasses.dataclass
class Started:
    """The notebook this command set running, left as asked however the command ends: suspended (its GPU freed), or
    with --no-suspend running, saying so. A second Ctrl-C while suspending leaves it running, and says so too."""

    cluster: Cluster
    name: str
    no_suspend: bool
    log: Callable[[str], None]

    def leave(self) -> None:
        left = f"`{suspend_command(self.cluster, self.name)}` frees it"
        try:
            if self.cluster.get("Notebook", self.name) is None:  # the apply was cut short: nothing started
                return
            if self.no_suspend:  # a GPU that stays paid for is worth a line even with -q
                warn(f"notebook {self.name} left running (--no-suspend), its GPU in use: {left}")
                return
            self.cluster.patch_spec("Notebook", self.name, {"suspend": True})
        except (CliError, KeyboardInterrupt) as error:
            warn(f"notebook {self.name} may be left running, its GPU in use ({str(error) or 'interrupted'}): {left}")
            return
        self.log(f"notebook {self.name} suspended (its GPU is free; `kubectl notebook {self.name}` reopens it)")


def run(args: argparse.Namespace, keep_running: Callable[[], bool]) -> int:
    """Everything local is checked (Exit.USAGE, credentials) before the first cluster call, and whatever this
    starts is left as --no-suspend says however it ends."""
    manifest = read_manifest(args.filename, ["Notebook"]) if args.filename else None
    directory = Path(args.directory) if args.directory else None
    if directory and not directory.is_dir():
        raise CliError(Exit.USAGE, f"-d {directory}: not a directory")
    packed = pack(directory) if directory and has_dockerfile(directory) else None
    client = google_storage() if directory else None
    cluster = Cluster.from_kubeconfig(args.kubeconfig, args.context, args.namespace)
    cluster.check_platform("Notebook")
    obj = notebook_object(args, manifest, cluster)
    console = Console(stderr=True, quiet=args.quiet)
    started = Started(cluster, obj["metadata"]["name"], args.no_suspend, console.log)
    try:
        return serve(args, obj, packed, cluster, console, client, keep_running)
    finally:
        started.leave()


def serve(args: argparse.Namespace, obj: dict[str, Any], packed: Packed | None, cluster: Cluster, console: Console,
          client: storage.Client | None, keep_running: Callable[[], bool]) -> int:
    """Apply (building first from `packed`), wait for Ready, port-forward, and sync until told to stop."""
    name = obj["metadata"]["name"]
    with console.status(f"notebook {name}: applying") as status:
        def progress(current: dict[str, Any]) -> None:
            ready = ready_condition(current)
            status.update(f"notebook {name}: {ready.reason or 'waiting'}: {ready.message}")

        resume(cluster, name, client, console.log)
        if packed:
            sent = 0

            def uploaded(count: int) -> None:
                nonlocal sent
                sent += count
                status.update(f"notebook {name}: uploading {sent:,}/{packed.size:,} bytes")

            upload_and_build(cluster, obj, packed, console.log, uploaded)
        else:
            cluster.apply(obj)
        ready = cluster.wait("Notebook", name, is_ready, READY_TIMEOUT, "Ready", progress)
    facts = NotebookStatus.model_validate(ready["status"])
    if not (facts.token_secret and facts.pod and facts.port and facts.workspace):
        raise CliError(Exit.FAILED, f"notebook {name} is Ready without its pod, port, token or workspace in status")
    token = cluster.secret_value(facts.token_secret, "token")
    with port_forward(cluster.target, facts.pod, facts.port):
        url = f"http://localhost:{facts.port}/"
        print(f"{url}?token={token}" if args.show_token else url, flush=True)
        if not args.show_token:
            read_token = shlex.join(["kubectl", *cluster.target.kubectl_flags(), "get", "secret",
                                     facts.token_secret, "-o", "jsonpath={.data.token}"])
            console.log(f"login token: --show-token prints it, or {read_token} | base64 -d")
        if args.open:
            webbrowser.open(f"{url}?token={token}")
        synced = WorkspaceSync(Path(args.directory), *workspace(client, facts.workspace), console.log,
                               heartbeat_of(client, facts.activity)) if client else None
        try:
            while keep_running():
                if synced:
                    synced()
                time.sleep(args.sync_interval)
        finally:  # Ctrl-C too: the last edits still go (a second Ctrl-C cuts this short)
            if synced:
                synced(" (final)")
    return Exit.OK


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def main(argv: Sequence[str] | None = None, keep_running: Callable[[], bool] = lambda: True) -> int:
    parser = command.parser("kubectl notebook", __doc__)
    parser.add_argument("name", nargs="?", help="the Notebook (default: named after DIR)")
    parser.add_argument("-d", "--directory", help="local directory to sync (and build from, if it has a Dockerfile)")
    parser.add_argument("-f", "--filename", help="a Notebook manifest")
    parser.add_argument("--model", help="a Model to mount read-only at /content/model")
    parser.add_argument("--dataset", help="a Dataset to mount read-only at /content/data")
    parser.add_argument("--gpu", default="nvidia-l4", choices=get_args(GpuType),
                        help="GPU type for a new notebook (default nvidia-l4)")
    parser.add_argument("--no-suspend", action="store_true", help="leave the notebook running on exit")
    parser.add_argument("--open", action="store_true", help="open the notebook in a browser")
    parser.add_argument("--show-token", action="store_true",
                        help="print the URL with its login token (by default the token stays off stdout)")
    parser.add_argument("--sync-interval", type=positive, default=2.0, help="seconds between syncs (default 2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the notebook's URL (and warnings)")
    args = parser.parse_args(argv)
    if not (args.name or args.directory or args.filename):
        parser.error("give NAME, -d DIR or -f FILE")
    return command.finish(lambda: run(args, keep_running))


if __name__ == "__main__":
    sys.exit(main())
