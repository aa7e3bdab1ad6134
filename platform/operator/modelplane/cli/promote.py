"""kubectl promote: make a version of a Model its champion (what servers serve), or hand promotion back to evaluation.

    kubectl promote MODEL VERSION       pin the champion to VERSION (a manual promotion, or a rollback)
    kubectl promote MODEL --auto        unpin: the next better version is promoted by evaluation again

It sets `spec.champion` (the field is the API; this is a shortcut that checks the version exists first).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelplane.api.model import MODEL
from modelplane.api.modelversion import MODEL_VERSION
from modelplane.cli import command
from modelplane.cli.cluster import Cluster
from modelplane.cli.errors import CliError, Exit


def run(args: argparse.Namespace) -> int:
    if (args.version is None) == (not args.auto):
        raise CliError(Exit.USAGE, "give a VERSION to pin, or --auto to let evaluation promote again")
    cluster = Cluster.from_kubeconfig(args.kubeconfig, args.context, args.namespace)
    cluster.check_platform(MODEL.kind)
    if cluster.get(MODEL.kind, args.model) is None:
        raise CliError(Exit.USAGE, f"Model {args.model} does not exist in namespace {cluster.namespace}")
    if args.version is not None and cluster.get(MODEL_VERSION.kind, f"{args.model}-v{args.version}") is None:
        raise CliError(Exit.USAGE, f"Model {args.model} has no version {args.version} "
                                   f"(kubectl get modelversions -l modelplane.dev/name={args.model})")
    cluster.patch_spec(MODEL.kind, args.model, {"champion": args.version})
    print(f"model.modelplane.dev/{args.model} champion "
          + (f"pinned to version {args.version}" if args.version else "promoted by evaluation"))
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = command.parser("kubectl promote", __doc__)
    parser.add_argument("model", help="the Model")
    parser.add_argument("version", nargs="?", type=int, help="the version to make champion")
    parser.add_argument("--auto", action="store_true", help="unpin: evaluation promotes again")
    args = parser.parse_args(argv)
    return command.finish(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
