"""Run the real Pulumi program offline: Pulumi's mock monitor stands in for the engine and the clouds.

Every resource the program registers is recorded with its inputs and options, so the CLI can print a plan and
the tests can assert on exactly what `pulumi up` would send.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import runpy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.config import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = REPO_ROOT / "stacks"
MOCK_PROJECT_NUMBER = "123456789012"


@dataclass
class PlannedResource:
    urn: str
    type: str
    name: str
    parent: str
    inputs: dict[str, Any]
    protect: bool
    provider: str
    dependencies: list[str]
    ignore_changes: list[str]

    @property
    def custom(self) -> bool:
        return not self.type.startswith(("modelplane:", "pulumi:"))


@dataclass
class Plan:
    stack: str
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> PlannedResource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> PlannedResource | None:
        return next((r for r in self.resources if r.urn == urn), None)


class _CloudMocks(pulumi.runtime.Mocks):
    """Plausible computed outputs (emails, endpoints, URLs) so the program's derived values resolve."""

    def __init__(self, project: str) -> None:
        self.project = project

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "gcp:serviceaccount/account:Account":
            email = f"{args.inputs['accountId']}@{self.project}.iam.gserviceaccount.com"
            state.update(email=email, member=f"serviceAccount:{email}",
                         name=f"projects/{self.project}/serviceAccounts/{email}")
        elif args.typ == "gcp:container/cluster:Cluster":
            endpoint = {"endpoint": f"gke-0123456789abcdef-{MOCK_PROJECT_NUMBER}.{args.inputs['location']}.gke.goog"}
            state.update(endpoint="203.0.113.10",
                         masterAuth={**args.inputs.get("masterAuth", {}),
                                     "clusterCaCertificate": base64.b64encode(b"mock-ca").decode()},
                         controlPlaneEndpointsConfig={"dnsEndpointConfig": {
                             **args.inputs.get("controlPlaneEndpointsConfig", {}).get("dnsEndpointConfig", {}),
                             **endpoint}})
        elif args.typ == "gcp:storage/bucket:Bucket":
            state.update(url=f"gs://{args.inputs['name']}")
        elif args.typ == "command:local:Command":
            state.update(stdout="", stderr="")  # the offline plan runs no command
        elif args.typ == "gcp:artifactregistry/repository:Repository":
            state.update(name=args.inputs["repositoryId"], registryUri=(
                f"{args.inputs['location']}-docker.pkg.dev/{self.project}/{args.inputs['repositoryId']}"))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": args.args.get("projectId"), "number": MOCK_PROJECT_NUMBER}, []
        if args.token == "gcp:artifactregistry/getDockerImage:getDockerImage":
            # Offline there is no registry to read a digest from, and a made-up one must never reach a rendered
            # manifest: the image stays named by its tag, which the platform repository keeps immutable.
            return {"selfLink": f"{args.args['location']}-docker.pkg.dev/{self.project}/{args.args['repositoryId']}/"
                                f"{args.args['imageName']}"}, []
        raise NotImplementedError(f"offline plan has no mock for {args.token}")


class _RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, also keeping what MockResourceArgs drops: parent, protect, dependencies."""

    def __init__(self, mocks_: pulumi.runtime.Mocks, plan: Plan) -> None:
        super().__init__(mocks_)
        self.plan = plan

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.plan.resources.append(PlannedResource(
                urn=response.urn, type=request.type, name=request.name, parent=request.parent,
                inputs=from_wire(pulumi.runtime.rpc.deserialize_properties(request.object)), protect=request.protect,
                provider=request.provider, dependencies=list(request.dependencies),
                ignore_changes=list(request.ignoreChanges)))
        return response


def from_wire(value: Any) -> Any:
    """`value` with every whole float turned back into the integer it was sent as.

    Inputs cross Pulumi's wire format as a protobuf Struct, where every number is a double: the program's
    `replicas: 1` arrives as `1.0`. A whole float is restored at any depth (lists, nested mappings), so everything
    the plan prints or render writes shows integers as integers; a fractional float such as `0.5` stays as it is.
    A float the program meant as whole (`1.0`) cannot be told apart from an integer here; render's test compares
    its bytes with the source manifests, which would show such a case.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: from_wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    return value


# The top-level keys of a Pulumi stack file: anything else (a config key written outside `config:`) is never read.
STACK_FILE_KEYS = ("config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt")
_YAML_NULL = "tag:yaml.org,2002:null"


def stack_file(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    return stacks_dir / f"Pulumi.{stack}.yaml"


def read_stack_values(stack: str, stacks_dir: Path = STACKS_DIR) -> dict[str, Any]:
    """The `config:` block of a stack file, keys as written (`modelplane:region`).

    A file that is not YAML, or whose shape Pulumi would not read as intended (a list for `config:`, a config key
    outside it), raises ConfigError naming the file and line, before any program runs.
    """
    path = stack_file(stack, stacks_dir)
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in path.parent.glob("Pulumi.*.yaml"))
        raise FileNotFoundError(f"no stack file {path}; stacks here: {', '.join(known) or 'none'}")
    loader = yaml.SafeLoader(path.read_bytes())
    try:
        root = loader.get_single_node()
        document = loader.construct_document(root) if root is not None else {}  # an empty file: no config
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}"]) from None
    finally:
        loader.dispose()
    problems = _shape_problems(path, root) if root is not None else []
    if problems:
        raise ConfigError(problems)
    return dict(document.get("config") or {})


def _shape_problems(path: Path, root: yaml.Node) -> list[str]:
    """What in the document's shape Pulumi would reject or never read, each at its line."""
    def at(node: yaml.Node) -> str:
        return f"{path}:{node.start_mark.line + 1}"

    def written(node: yaml.Node) -> str:
        return repr(node.value) if isinstance(node, yaml.ScalarNode) else "a list"

    if not isinstance(root, yaml.MappingNode):
        return [f"{at(root)}: a stack file is a mapping with a `config:` key, not {written(root)}"]
    problems = []
    for key, value in root.value:
        if key.value not in STACK_FILE_KEYS:
            problems.append(f"{at(key)}: {key.value!r} is outside `config:` and nothing reads it; indent it under "
                            f"`config:` (a stack file's top-level keys are {', '.join(STACK_FILE_KEYS)})")
        elif key.value == "config" and not (isinstance(value, yaml.MappingNode) or value.tag == _YAML_NULL):
            problems.append(f"{at(value)}: `config:` must be a mapping of keys such as modelplane:project, "
                            f"not {written(value)}")
    return problems


def as_pulumi_config(values: Mapping[str, Any]) -> dict[str, str]:
    """Pulumi hands config to programs as strings, structured values as JSON text."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def run_program(stack: str, values: Mapping[str, Any], plan: Plan | None = None,
                program: Path = REPO_ROOT / "__main__.py") -> Plan:
    """Run `program` under mocks with stack config `values`; `plan` collects what it declared, even if it fails."""
    plan = plan if plan is not None else Plan(stack=stack)
    # Pulumi's runtime drives its own event loop on this thread; give it a live one even if a caller closed its own.
    asyncio.set_event_loop(asyncio.new_event_loop())
    project = str(values.get("modelplane:project") or "unset-project")
    pulumi.runtime.set_mocks(_CloudMocks(project), project="modelplane", stack=stack, preview=True,
                             monitor=_RecordingMonitor(_CloudMocks(project), plan))
    set_all_config(as_pulumi_config(values))
    with collector_paused():
        _sync_await(run_pulumi_func(lambda: _run_in_stack(program, plan)))
    return plan


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a short, allocation-heavy run, then as it was. Importing pulumi_gcp's
    compute and container modules (most of a plan's time) builds thousands of classes, and the collections they set
    off walk an ever larger heap to free next to nothing; the first after the run walks all of it. Paused for the
    whole `modelplane plan`, it takes about 0.85x the time, in the same peak RSS (bench/startup.py; README)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _run_in_stack(program: Path, plan: Plan) -> None:
    from pulumi.runtime.settings import get_root_resource

    runpy.run_path(str(program), run_name="__main__")
    exports: dict[str, Any] = getattr(get_root_resource(), "outputs", {})
    pulumi.Output.all(**exports).apply(plan.outputs.update)
    for key, value in exports.items():
        is_secret: pulumi.Output[bool] = pulumi.Output.from_input(pulumi.Output.from_input(value).is_secret())
        is_secret.apply(partial(_note_secret, plan, key))


def _note_secret(plan: Plan, key: str, secret: bool) -> None:
    if secret:
        plan.secret_outputs.add(key)
