"""`kubectl applybuild -f model.yaml DIR`: build an object's image from a local directory, then apply it.

Exit codes: see modelplane/cli/errors.py (0 ok, 1 failed, 3 no cluster, 4 no CRDs, 5 refused, 6 timeout, 7 upload).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from modelplane.cli.cluster import Cluster, ready_condition
from modelplane.cli.errors import CliError, Exit
from modelplane.cli.pack import pack
from modelplane.cli.upload import upload_and_build

WAIT_TIMEOUT = 6 * 3600.0


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr)

    cluster.check_platform()
    obj = yaml.safe_load(Path(args.filename).read_text())
    if not isinstance(obj, dict) or "kind" not in obj or "spec" not in obj:
        raise CliError(Exit.USAGE, f"{args.filename}: expected one modelplane object with kind and spec")
    packed = pack(Path(args.directory))
    say(f"packed {args.directory}: {len(packed.files)} files, md5 {packed.md5}")
    upload_and_build(cluster, obj, packed, say)
    kind, name = obj["kind"], obj["metadata"]["name"]
    if args.wait:
        done = cluster.wait(kind, name, lambda o: bool((o.get("status") or {}).get("ready")), WAIT_TIMEOUT, "Ready",
                            lambda o: say(f"{kind} {name}: {ready_condition(o).get('reason', '...')}"))
        say(f"{kind} {name} is Ready: {ready_condition(done).get('message', '')}")
    print(f"{kind.lower()}.modelplane.dev/{name} applied")
    return Exit.OK


def main(argv: Sequence[str] | None = None, cluster: Cluster | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl applybuild", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--filename", required=True, help="manifest of a Dataset, Model, ModelServer or Notebook")
    parser.add_argument("directory", help="build context: a directory with a Dockerfile")
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--wait", action="store_true", help="wait until the object is Ready")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    args = parser.parse_args(argv)
    try:
        return run(args, cluster or Cluster.from_kubeconfig(args.namespace, args.context))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(error.code)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return int(Exit.USAGE)
