"""`kubectl applybuild -f model.yaml DIR`: build an object's image from a local directory, then apply it.

DIR is the build context, with its Dockerfile at DIR/Dockerfile (the build reads that one; a symlink is not
followed). The manifest and DIR are checked, and DIR packed, before any cluster call. Ctrl-C stops the command
where it is; what it applied stays applied (a started build goes on).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from modelplane.api import KINDS
from modelplane.cli import command
from modelplane.cli.cluster import Cluster, is_ready, ready_condition
from modelplane.cli.errors import CliError, Exit
from modelplane.cli.pack import DOCKERFILE, has_dockerfile, pack
from modelplane.cli.upload import upload_and_build

WAIT_TIMEOUT = 6 * 3600.0


def build_context(directory: str) -> Path:
    """DIR, refused (Exit.USAGE) unless it is a directory whose Dockerfile the packed context will hold."""
    path = Path(directory)
    if not path.is_dir():
        raise CliError(Exit.USAGE, f"{directory}: not a directory")
    if not has_dockerfile(path):
        raise CliError(Exit.USAGE, f"no Dockerfile at {path / DOCKERFILE}: the build reads the context's top-level "
                                   "Dockerfile (a regular file: a symlink is not followed)")
    return path


def run(args: argparse.Namespace) -> int:
    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr)

    obj = command.read_manifest(args.filename, [kind.kind for kind in KINDS])
    packed = pack(build_context(args.directory))
    cluster = Cluster.from_kubeconfig(args.kubeconfig, args.context, args.namespace)
    kind, name = obj["kind"], obj["metadata"]["name"]
    cluster.check_platform(kind)
    say(f"packed {args.directory}: {len(packed.files)} files, md5 {packed.md5}")
    upload_and_build(cluster, obj, packed, say)
    if args.wait:
        done = cluster.wait(kind, name, is_ready, WAIT_TIMEOUT, "Ready",
                            lambda o: say(f"{kind} {name}: {ready_condition(o).reason or '...'}"))
        say(f"{kind} {name} is Ready: {ready_condition(done).message}")
    print(f"{kind.lower()}.modelplane.dev/{name} applied")
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = command.parser("kubectl applybuild", __doc__)
    parser.add_argument("-f", "--filename", required=True, help="manifest of a Dataset, Model, ModelServer or Notebook")
    parser.add_argument("directory", help="build context: a directory with a Dockerfile")
    parser.add_argument("--wait", action="store_true", help="wait until the object is Ready")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the result")
    args = parser.parse_args(argv)
    return command.finish(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
