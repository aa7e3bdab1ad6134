"""`modelplane plan --stack dev`: the resource tree a stack would create, computed offline under Pulumi's mocks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from infra.config import ConfigError
from infra.offline import STACKS_DIR, Plan, PlannedResource, read_stack_values, run_program


def _n(value: Any) -> Any:
    """Numbers arrive as floats through the Pulumi wire format; show whole ones as integers."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _pool(i: dict[str, Any]) -> str:
    node = i.get("nodeConfig", {})
    scale = i.get("autoscaling", {})
    gpus = [f"{_n(g['count'])} x {g['type']}" for g in node.get("guestAccelerators", [])]
    parts = [f"machine={node.get('machineType')}", f"gpu={', '.join(gpus) or 'none'}",
             f"nodes={_n(scale.get('totalMinNodeCount'))}..{_n(scale.get('totalMaxNodeCount'))}",
             f"spot={node.get('spot', False)}", f"zones={','.join(i.get('nodeLocations', []))}"]
    if node.get("ephemeralStorageLocalSsdConfig"):
        parts.append(f"localSsd={_n(node['ephemeralStorageLocalSsdConfig']['localSsdCount'])}")
    return " ".join(parts)


def _cluster(i: dict[str, Any]) -> str:
    return (f"location={i.get('location')} channel={i.get('releaseChannel', {}).get('channel')} "
            f"privateNodes={i.get('privateClusterConfig', {}).get('enablePrivateNodes')} "
            f"workloadPool={i.get('workloadIdentityConfig', {}).get('workloadPool')} "
            f"gcsFuse={i.get('addonsConfig', {}).get('gcsFuseCsiDriverConfig', {}).get('enabled')} "
            f"datapath={i.get('datapathProvider')} deletionProtection={i.get('deletionProtection')}")


def _bucket(i: dict[str, Any]) -> str:
    return (f"name={i.get('name')} location={i.get('location')} "
            f"uniformAccess={i.get('uniformBucketLevelAccess')} publicAccess={i.get('publicAccessPrevention')} "
            f"versioning={i.get('versioning', {}).get('enabled')} "
            f"softDelete={_n(i.get('softDeletePolicy', {}).get('retentionDurationSeconds', 0) // 86400)}d "
            f"forceDestroy={i.get('forceDestroy')}")


def _iam(i: dict[str, Any]) -> str:
    condition = i.get("condition", {}).get("title")
    return f"{i.get('role')} -> {i.get('member')}" + (f" (if {condition})" if condition else "")


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "gcp:container/cluster:Cluster": _cluster,
    "gcp:container/nodePool:NodePool": _pool,
    "gcp:storage/bucket:Bucket": _bucket,
    "gcp:artifactregistry/repository:Repository": lambda i: (
        f"id={i.get('repositoryId')} format={i.get('format')} cleanupPolicies={len(i.get('cleanupPolicies', []))}"),
    "gcp:serviceaccount/account:Account": lambda i: f"id={i.get('accountId')}",
    "gcp:compute/subnetwork:Subnetwork": lambda i: f"cidr={i.get('ipCidrRange')} secondary=" + ",".join(
        f"{r['rangeName']}:{r['ipCidrRange']}" for r in i.get("secondaryIpRanges", [])),
    "gcp:projects/service:Service": lambda i: str(i.get("service")),
    "gcp:projects/iAMMember:IAMMember": _iam,
    "gcp:serviceaccount/iAMMember:IAMMember": _iam,
    "gcp:storage/bucketIAMMember:BucketIAMMember": _iam,
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": _iam,
}


def render_plan(plan: Plan) -> str:
    """The plan as an indented tree, one resource a line, with the properties a reviewer checks."""
    children: dict[str, list[PlannedResource]] = {}
    for resource in plan.resources:
        children.setdefault(resource.parent, []).append(resource)
    roots = [r for r in plan.resources if plan.by_urn(r.parent) is None]
    lines = [f"Plan of stack {plan.stack!r} (offline, Pulumi mocks): {sum(r.custom for r in plan.resources)} "
             f"cloud resources in {sum(not r.custom for r in plan.resources)} components"]

    def walk(resource: PlannedResource, depth: int) -> None:
        summarize = SUMMARIES.get(resource.type)
        summary = summarize(resource.inputs) if summarize else ""
        flags = " [protected]" if resource.protect else ""
        lines.append(f"{'  ' * depth}+ {resource.type} {resource.name}{flags}" + (f"  {summary}" if summary else ""))
        for child in sorted(children.get(resource.urn, []), key=lambda r: (r.type, r.name)):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 1)
    lines.append("Outputs:")
    for key, value in plan.outputs.items():
        shown = "[secret]" if key in plan.secret_outputs else value
        lines.append(f"  {key}: {shown}")
    return "\n".join(lines)


def plan_command(args: argparse.Namespace) -> int:
    try:
        values = read_stack_values(args.stack, args.stacks_dir)
        plan = run_program(args.stack, values)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ConfigError as error:
        print(f"stack {args.stack!r}: {error}", file=sys.stderr)
        print("Nothing was planned. Fix the keys above in "
              f"stacks/Pulumi.{args.stack}.yaml (see README.md, 'Stack configuration').", file=sys.stderr)
        return 2
    print(render_plan(plan))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelplane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print the resources a stack would create (offline)")
    plan.add_argument("--stack", "-s", default="dev", help="stack name: stacks/Pulumi.<stack>.yaml (default dev)")
    plan.add_argument("--stacks-dir", type=Path, default=STACKS_DIR, help="where the stack files are")
    plan.set_defaults(run=plan_command)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
