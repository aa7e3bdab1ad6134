"""The platform engineer's tools. The first two run the real Pulumi program offline, under Pulumi's mocks:

    modelplane plan --stack dev                    the resource tree the stack would create
    modelplane render --stack dev --out DIR        the in-cluster manifests as YAML + kustomization (GitOps)
    modelplane kubeconfig --stack dev --tenant ml  an ML user's kubeconfig in a tenant namespace (deployed stack)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from infra.config import ConfigError, parse_pulumi_config
from infra.gke.kubeconfig import for_tenant
from infra.offline import (
    STACKS_DIR,
    Plan,
    PlannedResource,
    as_pulumi_config,
    collector_paused,
    read_stack_values,
    run_program,
    stack_file,
)


def _list(values: Iterable[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _pool(i: dict[str, Any]) -> str:
    node = i.get("nodeConfig", {})
    scale = i.get("autoscaling", {})
    gpus = [f"{g['count']} x {g['type']}" for g in node.get("guestAccelerators", [])]
    parts = [f"machine={node.get('machineType')}", f"gpu={', '.join(gpus) or 'none'}",
             f"nodes={scale.get('totalMinNodeCount')}..{scale.get('totalMaxNodeCount')}",
             f"spot={node.get('spot', False)}", f"zones={','.join(i.get('nodeLocations', []))}",
             f"disk={node.get('diskSizeGb')}GB/{node.get('diskType', 'pd-balanced')}",
             f"image={node.get('imageType')}"]
    if node.get("sandboxConfig"):
        parts.append(f"sandbox={node['sandboxConfig']['sandboxType']}")
    if node.get("ephemeralStorageLocalSsdConfig"):
        parts.append(f"localSsd={node['ephemeralStorageLocalSsdConfig']['localSsdCount']}")
    taints = [f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in node.get("taints", [])]
    return " ".join([*parts, f"taints={_list(taints)}"])


def _cluster(i: dict[str, Any]) -> str:
    networks = [n["cidrBlock"] for n in i.get("masterAuthorizedNetworksConfig", {}).get("cidrBlocks", [])]
    dns = i.get("controlPlaneEndpointsConfig", {}).get("dnsEndpointConfig", {})
    return (f"location={i.get('location')} channel={i.get('releaseChannel', {}).get('channel')} "
            f"privateNodes={i.get('privateClusterConfig', {}).get('enablePrivateNodes')} "
            f"authorizedNetworks={_list(networks)} dnsEndpointExternal={dns.get('allowExternalTraffic', False)} "
            f"workloadPool={i.get('workloadIdentityConfig', {}).get('workloadPool')} "
            f"gcsFuse={i.get('addonsConfig', {}).get('gcsFuseCsiDriverConfig', {}).get('enabled')} "
            f"datapath={i.get('datapathProvider')} deletionProtection={i.get('deletionProtection')} "
            f"secretsEncryption={i.get('databaseEncryption', {}).get('state', 'DECRYPTED')} "
            f"binaryAuthorization={i.get('binaryAuthorization', {}).get('evaluationMode')} "
            f"groupsForRbac={i.get('authenticatorGroupsConfig', {}).get('securityGroup', 'off')}")


def _lifecycle(rule: dict[str, Any]) -> str:
    condition = rule["condition"]
    what = "noncurrent versions" if "daysSinceNoncurrentTime" in condition else (
        ",".join(condition.get("matchesPrefixes", [])) or "all objects")
    days = condition.get("daysSinceNoncurrentTime", condition.get("age"))
    return f"{rule['action']['type'].lower()} {what} after {days}d"


def _bucket(i: dict[str, Any]) -> str:
    return (f"name={i.get('name')} location={i.get('location')} "
            f"uniformAccess={i.get('uniformBucketLevelAccess')} publicAccess={i.get('publicAccessPrevention')} "
            f"versioning={i.get('versioning', {}).get('enabled', False)} "
            f"softDelete={i.get('softDeletePolicy', {}).get('retentionDurationSeconds', 0) // 86400}d "
            f"forceDestroy={i.get('forceDestroy')} "
            f"lifecycle={_list(_lifecycle(rule) for rule in i.get('lifecycleRules', []))}")


def _firewall(i: dict[str, Any]) -> str:
    rules = [f"{verb} {r['protocol']}" + (f":{','.join(r['ports'])}" if r.get("ports") else "")
             for verb, key in (("allow", "allows"), ("deny", "denies")) for r in i.get(key, [])]
    return (f"{i.get('direction')} priority={i.get('priority')} from={_list(i.get('sourceRanges', []))} "
            f"{' '.join(rules)}")


def _iam(i: dict[str, Any]) -> str:
    condition = i.get("condition", {}).get("description")
    return f"{i.get('role')} -> {i.get('member')}" + (f" (if {condition})" if condition else "")


def _group(i: dict[str, Any]) -> str:
    kinds: dict[str, int] = {}
    for obj in i.get("objs", []):
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))


def _build(i: dict[str, Any]) -> str:
    env = i.get("environment", {})
    images = [f"{env.get('REGISTRY')}/{name}:{env.get('TAG')}" for name in env.get("IMAGES", "").split()]
    return f"runs on `pulumi up`: Cloud Build of {', '.join(images)}"


def _labels(i: dict[str, Any]) -> str:
    labels = i.get("defaultLabels", "{}")
    return f"project={i.get('project')} region={i.get('region')} labels=" + json.dumps(
        json.loads(labels) if isinstance(labels, str) else labels, sort_keys=True)


SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "kubernetes:yaml/v2:ConfigGroup": _group,
    "pulumi:providers:gcp": _labels,
    "gcp:container/cluster:Cluster": _cluster,
    "gcp:container/nodePool:NodePool": _pool,
    "gcp:storage/bucket:Bucket": _bucket,
    "gcp:compute/firewall:Firewall": _firewall,
    "gcp:artifactregistry/repository:Repository": lambda i: (
        f"id={i.get('repositoryId')} format={i.get('format')} cleanupPolicies={len(i.get('cleanupPolicies', []))} "
        f"immutableTags={i.get('dockerConfig', {}).get('immutableTags', False)}"),
    "gcp:binaryauthorization/policy:Policy": lambda i: (
        f"default={i.get('defaultAdmissionRule', {}).get('evaluationMode')}/"
        f"{i.get('defaultAdmissionRule', {}).get('enforcementMode')} "
        f"allow={_list(p['namePattern'] for p in i.get('admissionWhitelistPatterns', []))}"),
    "gcp:kms/cryptoKey:CryptoKey": lambda i: f"purpose={i.get('purpose')} rotation={i.get('rotationPeriod')}",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": _iam,
    "gcp:serviceaccount/account:Account": lambda i: f"id={i.get('accountId')}",
    "gcp:compute/subnetwork:Subnetwork": lambda i: f"cidr={i.get('ipCidrRange')} secondary=" + ",".join(
        f"{r['rangeName']}:{r['ipCidrRange']}" for r in i.get("secondaryIpRanges", [])),
    "gcp:projects/service:Service": lambda i: str(i.get("service")),
    "gcp:projects/iAMMember:IAMMember": _iam,
    "gcp:serviceaccount/iAMMember:IAMMember": _iam,
    "gcp:storage/bucketIAMMember:BucketIAMMember": _iam,
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": _iam,
    "command:local:Command": _build,
}


def render_plan(plan: Plan) -> str:
    """The plan as an indented tree, one resource a line, with the properties a reviewer checks."""
    # Siblings by type and name: the runtime registers resources from its threads, in an order that varies.
    resources = sorted(plan.resources, key=lambda r: (r.type, r.name))
    children: dict[str, list[PlannedResource]] = {}
    for resource in resources:
        children.setdefault(resource.parent, []).append(resource)
    roots = [r for r in resources if plan.by_urn(r.parent) is None]
    lines = [f"Plan of stack {plan.stack!r} (offline, Pulumi mocks): {sum(r.custom for r in plan.resources)} "
             f"cloud resources in {sum(not r.custom for r in plan.resources)} components"]

    def walk(resource: PlannedResource, depth: int) -> None:
        summarize = SUMMARIES.get(resource.type)
        summary = summarize(resource.inputs) if summarize else ""
        flags = " [protected]" if resource.protect else ""
        lines.append(f"{'  ' * depth}+ {resource.type} {resource.name}{flags}" + (f"  {summary}" if summary else ""))
        for child in children.get(resource.urn, []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 1)
    lines.append("Outputs:")
    for key, value in _shown_outputs(plan).items():
        lines.append(f"  {key}: {value if isinstance(value, str) else json.dumps(value, sort_keys=True)}")
    return "\n".join(lines)


def _shown_outputs(plan: Plan) -> dict[str, Any]:
    return {key: "[secret]" if key in plan.secret_outputs else plan.outputs[key] for key in sorted(plan.outputs)}


SECRET_INPUTS = ("kubeconfig",)  # the Kubernetes provider's: Pulumi keeps it secret, so the plan does too


def _without_secrets(inputs: dict[str, Any]) -> dict[str, Any]:
    return {key: "[secret]" if key in SECRET_INPUTS else value for key, value in inputs.items()}


def plan_json(plan: Plan) -> str:
    """The plan for machines: every resource with all its inputs (secrets stay hidden), in a stable order."""
    resources = sorted(plan.resources, key=lambda r: (r.type, r.name))
    return json.dumps({
        "stack": plan.stack,
        "resources": [{"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent, "protect": r.protect,
                       "dependencies": sorted(r.dependencies), "inputs": _without_secrets(r.inputs)}
                      for r in resources],
        "outputs": _shown_outputs(plan),
    }, indent=2, sort_keys=True, default=str)


def _planned(args: argparse.Namespace) -> Plan | None:
    """The offline plan of the stack, or None after printing why there is none (a bad stack file is a message, never
    a traceback)."""
    try:
        return run_program(args.stack, read_stack_values(args.stack, args.stacks_dir))
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
    except ConfigError as error:
        print(f"stack {args.stack!r}: {error}", file=sys.stderr)
        print(f"Nothing was planned. Fix the keys above in {stack_file(args.stack, args.stacks_dir)} "
              "(see README.md, 'Stack configuration').", file=sys.stderr)
    return None


def plan_command(args: argparse.Namespace) -> int:
    plan = _planned(args)
    if plan is None:
        return 2
    print(plan_json(plan) if args.format == "json" else render_plan(plan))
    return 0


GROUP_ORDER = ("crds", "system", "tenants", "queues")


HEAD = ("apiVersion", "kind", "metadata")


def _sorted(value: Any) -> Any:
    """`value` with the keys of every mapping in it sorted."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _canonical(obj: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first, as people write manifests, then every key sorted at every depth."""
    ordered = _sorted(obj)
    return {**{key: ordered[key] for key in HEAD if key in ordered},
            **{key: item for key, item in ordered.items() if key not in HEAD}}


def manifests_yaml(objs: Sequence[dict[str, Any]]) -> str:
    """The objects as a multi-document YAML in canonical key order, so an unchanged stack renders the same bytes.

    Key order cannot come from the source: the manifests reach render through Pulumi's wire format (a protobuf
    Struct, a map), which hands keys back in an order that changes from one process to the next.
    """
    return yaml.safe_dump_all([_canonical(obj) for obj in objs], sort_keys=False)


def render_command(args: argparse.Namespace) -> int:
    """Write exactly what the stack's Platform component applies, one file per group, plus a kustomization."""
    plan = _planned(args)
    if plan is None:
        return 2
    groups = {r.name: r.inputs["objs"] for r in plan.of_type("kubernetes:yaml/v2:ConfigGroup")}
    # Kueue's and JobSet's release manifests, by the same pinned URLs `pulumi up` applies: Argo CD and Flux fetch them.
    # In the order they install (JobSet before Kueue, infra/platform.py); the mocks register them in any order.
    release = [r.inputs["file"] for r in sorted(plan.of_type("kubernetes:yaml/v2:ConfigFile"), key=lambda r: r.name)]
    out: Path = args.out or Path("deploy") / args.stack
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for index, name in enumerate(GROUP_ORDER):
        path = out / f"{index}0-{name}.yaml"
        path.write_text(manifests_yaml(groups[name]))
        files.append(path.name)
    (out / "kustomization.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": release + files}))
    print(f"wrote {', '.join(files)} and kustomization.yaml (with {', '.join(release)}) to {out} "
          f"({sum(len(objs) for objs in groups.values())} objects)")
    return 0


def kubeconfig_command(args: argparse.Namespace) -> int:
    """An ML user's kubeconfig: the stack's own (from `pulumi stack output`, so it needs the deployed stack), in the
    tenant's namespace. It holds no credential: whoever uses it authenticates as themselves through gcloud."""
    try:
        tenants = parse_pulumi_config(as_pulumi_config(read_stack_values(args.stack, args.stacks_dir)),
                                      args.stack).tenant_names
    except (FileNotFoundError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.tenant not in tenants:
        print(f"error: --tenant {args.tenant!r} is not a tenant of stack {args.stack!r}; its tenants: "
              f"{', '.join(tenants)}", file=sys.stderr)
        return 2
    try:
        found = subprocess.run(["pulumi", "stack", "output", "kubeconfig", "--show-secrets", "--stack", args.stack],
                               capture_output=True, text=True, check=False)
    except FileNotFoundError:
        print("error: the pulumi CLI is not on PATH (https://www.pulumi.com/docs/install/)", file=sys.stderr)
        return 3
    if found.returncode != 0:
        print(f"error: pulumi stack output kubeconfig --stack {args.stack} failed (is the stack deployed, and are you "
              f"logged in to its state?): {found.stderr.strip()}", file=sys.stderr)
        return 3
    text = for_tenant(found.stdout, args.tenant)
    if args.out:
        args.out.touch(mode=0o600)
        args.out.write_text(text)
        print(f"wrote {args.out}: context in namespace {args.tenant}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelplane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print the resources a stack would create (offline)")
    plan.add_argument("--format", choices=("text", "json"), default="text",
                      help="text: a tree with what a reviewer checks; json: every input, for machines")
    render = commands.add_parser("render", help="write the in-cluster manifests for GitOps (offline)")
    render.add_argument("--out", type=Path, help="output directory (default deploy/<stack>)")
    tenant_kubeconfig = commands.add_parser(
        "kubeconfig", help="an ML user's kubeconfig for a tenant namespace (needs the deployed stack and pulumi)")
    tenant_kubeconfig.add_argument("--tenant", required=True, help="the tenant namespace the context works in")
    tenant_kubeconfig.add_argument("--out", type=Path, help="write here (mode 0600) instead of stdout")
    for command, run in ((plan, plan_command), (render, render_command), (tenant_kubeconfig, kubeconfig_command)):
        command.add_argument("--stack", "-s", default="dev", help="stack: stacks/Pulumi.<stack>.yaml (default dev)")
        command.add_argument("--stacks-dir", type=Path, default=STACKS_DIR, help="where the stack files are")
        command.set_defaults(run=run)
    args = parser.parse_args(argv)
    with collector_paused():  # a plan's heap is garbage-free until it ends (offline.collector_paused)
        return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
