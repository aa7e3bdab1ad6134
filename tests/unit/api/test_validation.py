"""Every example is accepted as written; every invalid object is rejected at `kubectl apply` time with its message.

The objects go through tests/support/apiserver.py: the checked-in CRDs' defaulting, OpenAPI schema and CEL rules.
"""

import copy
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api import kind_for
from modelplane.api.common import quantity_value
from tests.support.apiserver import AdmissionError, admit

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"
EXAMPLES = {path.relative_to(EXAMPLES_DIR).as_posix(): yaml.safe_load(path.read_text())
            for path in sorted(EXAMPLES_DIR.rglob("*.yaml"))}

Obj = dict[str, Any]


def example(name: str) -> Obj:
    return copy.deepcopy(EXAMPLES[name])


def test_examples_cover_every_kind_and_flow() -> None:
    kinds = {obj["kind"] for obj in EXAMPLES.values()}
    assert kinds == {"Dataset", "Model", "ModelServer", "Notebook"}
    assert any("git" in obj["spec"].get("build", {}) for obj in EXAMPLES.values())
    assert any("baseModel" in obj["spec"] for obj in EXAMPLES.values())
    assert any("${{ secrets." in str(obj["spec"].get("env")) for obj in EXAMPLES.values())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_is_accepted_and_parses_through_the_same_types(name: str) -> None:
    stored = admit(example(name))
    kind = kind_for(stored["kind"])
    spec = kind.spec.model_validate(stored["spec"])
    # The schema's defaults are the types' defaults: re-serialising the defaulted object changes nothing.
    assert spec.model_dump(by_alias=True, exclude_none=True) == stored["spec"]


def spec_of(obj: Obj) -> Obj:
    spec: Obj = obj["spec"]
    return spec


def with_spec(name: str, change: Callable[[Obj], Any]) -> Obj:
    obj = example(name)
    change(spec_of(obj))
    return obj


DS, MDL, FT, SRV, NB = ("dataset-squad.yaml", "model-falcon-7b.yaml", "model-falcon-7b-squad.yaml",
                        "server-falcon-7b-squad.yaml", "notebook-falcon-7b.yaml")
UPLOAD = {"md5": "d41d8cd98f00b204e9800998ecf8427e", "requestID": "r1"}

INVALID: list[tuple[str, Obj, str, str]] = [
    ("image and build", with_spec(DS, lambda s: s.update(image="busybox")), "spec",
     "spec needs exactly one of image or build"),
    ("neither image nor build", with_spec(DS, lambda s: s.pop("build")), "spec",
     "spec needs exactly one of image or build"),
    ("git and upload", with_spec(DS, lambda s: s["build"].update(upload=UPLOAD)), "spec.build",
     "build needs exactly one of git or upload"),
    ("empty build", with_spec(DS, lambda s: s.update(build={})), "spec.build",
     "build needs exactly one of git or upload"),
    ("git URL scheme", with_spec(DS, lambda s: s["build"]["git"].update(url="ftp://example.com/repo")),
     "spec.build.git.url", "build.git.url must be an https:// or ssh:// URL"),
    ("git ref option-like", with_spec(DS, lambda s: s["build"]["git"].update(ref="--upload-pack=x")),
     "spec.build.git.ref", "build.git.ref must be a branch, tag or commit"),
    ("git ref with ..", with_spec(DS, lambda s: s["build"]["git"].update(ref="v1..v2")),
     "spec.build.git.ref", "without '..'"),
    ("git path absolute", with_spec(DS, lambda s: s["build"]["git"].update(path="/etc")),
     "spec.build.git.path", "build.git.path must be a relative directory"),
    ("git path escapes", with_spec(DS, lambda s: s["build"]["git"].update(path="../other")),
     "spec.build.git.path", "build.git.path must be a relative directory"),
    ("git without url", with_spec(DS, lambda s: s["build"]["git"].pop("url")), "spec.build.git",
     "'url' is a required property"),
    ("md5 not hex", with_spec(DS, lambda s: s.update(build={"upload": {**UPLOAD, "md5": "Z" * 32}})),
     "spec.build.upload.md5", "build.upload.md5 must be 32 lower-case hex digits"),
    ("md5 too short", with_spec(DS, lambda s: s.update(build={"upload": {**UPLOAD, "md5": "abc"}})),
     "spec.build.upload.md5", "build.upload.md5 must be 32 lower-case hex digits"),
    ("requestID with spaces", with_spec(DS, lambda s: s.update(build={"upload": {**UPLOAD, "requestID": "a b"}})),
     "spec.build.upload.requestID", "build.upload.requestID must be letters, digits and '-'"),
    ("upload without md5", with_spec(DS, lambda s: s.update(build={"upload": {"requestID": "r1"}})),
     "spec.build.upload", "'md5' is a required property"),
    ("unknown GPU type", with_spec(FT, lambda s: s["resources"]["gpu"].update(type="nvidia-a10")),
     "spec.resources.gpu.type", "'nvidia-a10' is not one of ['nvidia-l4'"),
    ("zero GPUs", with_spec(FT, lambda s: s["resources"]["gpu"].update(count=0)),
     "spec.resources.gpu.count", "0 is less than the minimum of 1"),
    ("17 GPUs", with_spec(FT, lambda s: s["resources"]["gpu"].update(count=17)),
     "spec.resources.gpu.count", "17 is greater than the maximum of 16"),
    ("GPU count without type", with_spec(FT, lambda s: s["resources"].update(gpu={"count": 2})),
     "spec.resources.gpu", "'type' is a required property"),
    ("no nodes", with_spec(FT, lambda s: s["resources"].update(nodes=0)),
     "spec.resources.nodes", "0 is less than the minimum of 1"),
    ("65 nodes", with_spec(FT, lambda s: s["resources"].update(nodes=65)),
     "spec.resources.nodes", "65 is greater than the maximum of 64"),
    ("nodes without a GPU", with_spec(FT, lambda s: (s["resources"].pop("gpu"), s["resources"].update(nodes=2))),
     "spec.resources", "resources.nodes > 1 needs resources.gpu"),
    ("nodes on an import", with_spec(MDL, lambda s: s["resources"].update(nodes=2, gpu={"type": "nvidia-l4"})),
     "spec", "resources.nodes > 1 is for training runs"),
    ("cpu not a quantity", with_spec(MDL, lambda s: s["resources"].update(cpu="four")),
     "spec.resources.cpu", "'four' is not valid under any of the given schemas"),
    ("memory in GB", with_spec(MDL, lambda s: s["resources"].update(memory="16GB")),
     "spec.resources.memory", "'16GB' is not valid under any of the given schemas"),
    ("env name with digit first", with_spec(MDL, lambda s: s.update(env={"9LIVES": "x"})),
     "spec.env", "env names must be letters, digits and '_'"),
    ("env name too long", with_spec(MDL, lambda s: s.update(env={"A" * 129: "x"})),
     "spec.env", "at most 128 characters"),
    ("cpu an object", with_spec(MDL, lambda s: s["resources"].update(cpu={"cores": 4})),
     "spec.resources.cpu", "is not valid under any of the given schemas"),
    ("memory negative", with_spec(MDL, lambda s: s["resources"].update(memory=-1)),
     "spec.resources.memory", "-1 is not valid under any of the given schemas"),
    ("too many params", with_spec(MDL, lambda s: s.update(params={f"p{i}": i for i in range(129)})),
     "spec.params", "has too many properties"),
    ("env name reserved for params", with_spec(MDL, lambda s: s.update(env={"PARAM_NAME": "x"})),
     "spec.env", "env names starting with PARAM_ are reserved for params"),
    ("malformed secret reference", with_spec(MDL, lambda s: s.update(env={"HF_TOKEN": "${{ secret.hf }}"})),
     "spec.env", "an env value starting with ${{ must be ${{ secrets.NAME.KEY }}"),
    ("unknown onDelete", with_spec(MDL, lambda s: s.update(onDelete="Keep")),
     "spec.onDelete", "'Keep' is not one of ['Retain', 'Delete']"),
    ("baseModel without dataset", with_spec(FT, lambda s: s.pop("dataset")), "spec",
     "baseModel needs a dataset to fine-tune on"),
    ("reference not a DNS label", with_spec(FT, lambda s: s["baseModel"].update(name="Falcon_7B")),
     "spec.baseModel.name", "does not match"),
    ("reference too long", with_spec(FT, lambda s: s["dataset"].update(name="d" * 64)),
     "spec.dataset.name", "is too long"),
    ("server without model", with_spec(SRV, lambda s: s.pop("model")), "spec", "'model' is a required property"),
    ("negative replicas", with_spec(SRV, lambda s: s.update(replicas=-1)), "spec.replicas",
     "-1 is less than the minimum of 0"),
    ("autoscaling inverted", with_spec(SRV, lambda s: s.update(autoscaling={"minReplicas": 3, "maxReplicas": 2})),
     "spec.autoscaling", "autoscaling.minReplicas must not exceed maxReplicas"),
    ("server with image and build", with_spec(SRV, lambda s: s.update(image="vllm/vllm-openai", build={
        "git": {"url": "https://github.com/org/server"}})), "spec", "spec takes image or build, not both"),
    ("monitoring without logging", with_spec(SRV, lambda s: s.update(monitoring={})), "spec",
     "monitoring reads the traffic that logging records: set spec.logging"),
    ("sample rate over 1", with_spec(SRV, lambda s: s.update(logging={"sampleRate": 1.5})), "spec.logging.sampleRate",
     "1.5 is greater than the maximum of 1"),
    ("redacted field not a path", with_spec(SRV, lambda s: s.update(logging={"redact": {"fields": ["a..b"]}})),
     "spec.logging.redact.fields.0", "'a..b' does not match"),
    ("significance 0", with_spec(SRV, lambda s: s.update(logging={}, monitoring={"detection": {"significance": 0}})),
     "spec.monitoring.detection.significance", "less than or equal to the minimum of 0"),
    ("monitoring on a GPU", with_spec(SRV, lambda s: s.update(logging={}, monitoring={"resources": {
        "gpu": {"type": "nvidia-l4"}}})), "spec.monitoring", "monitoring runs on CPUs"),
    ("notebook suspend not boolean", with_spec(NB, lambda s: s.update(suspend="yes")), "spec.suspend",
     "'yes' is not of type 'boolean'"),
    ("command not a list", with_spec(MDL, lambda s: s.update(command="python load.py")), "spec.command",
     "'python load.py' is not of type 'array'"),
    ("no spec", {k: v for k, v in example(NB).items() if k != "spec"}, "<root>", "'spec' is a required property"),
]


@pytest.mark.parametrize(("obj", "path", "message"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_object_is_rejected_with_its_message(obj: Obj, path: str, message: str) -> None:
    with pytest.raises(AdmissionError) as rejected:
        admit(obj)
    assert any(error.startswith(f"{path}: ") and message in error for error in rejected.value.errors), \
        rejected.value.errors


def test_corpus_is_large_and_each_case_distinct() -> None:
    assert len(INVALID) >= 30
    assert len({yaml.safe_dump(case[1]) for case in INVALID}) == len(INVALID)


def switch_to_image(spec: Obj) -> None:
    spec.pop("build")
    spec["image"] = "busybox"


@pytest.mark.parametrize("change", [
    lambda s: s["build"]["git"].update(ref="v0.4.0"),
    lambda s: s["params"].update(split="test"),
    lambda s: s.update(command=["python", "load.py"]),
    switch_to_image,
], ids=["ref", "params", "command", "image"])
def test_dataset_source_is_immutable(change: Callable[[Obj], Any]) -> None:
    old = example(DS)
    new = with_spec(DS, change)
    with pytest.raises(AdmissionError) as rejected:
        admit(new, old=old)
    assert rejected.value.errors == [
        "spec: a Dataset's loader is immutable: image, build, command and params cannot change; set "
        "spec.reload.requestID to load new data from the same source, or create a new Dataset for another source"]


def test_dataset_metadata_and_status_may_change() -> None:
    old = example(DS)
    new = example(DS)
    new["metadata"]["labels"] = {"team": "nlp"}
    new["status"] = {"ready": True}
    assert admit(new, old=old)["metadata"]["labels"] == {"team": "nlp"}


def test_model_spec_may_change_to_start_a_new_run() -> None:
    old = example(FT)
    assert admit(with_spec(FT, lambda s: s["params"].update(epochs=3)), old=old)["spec"]["params"]["epochs"] == 3


def test_defaults_are_applied() -> None:
    stored = admit(example(SRV))
    assert stored["spec"]["resources"]["gpu"]["count"] == 1
    assert stored["spec"]["resources"]["disk"] == "20Gi"
    notebook = admit(example(NB))
    assert notebook["spec"]["suspend"] is False and notebook["spec"]["onDelete"] == "Retain"


@pytest.mark.parametrize(("kind", "spec", "message"), [
    ("Dataset", {}, "spec needs exactly one of image or build"),
    ("Model", {"image": "x", "build": {"git": {"url": "https://github.com/o/r"}}},
     "spec needs exactly one of image or build"),
    ("Model", {"build": {}}, "build needs exactly one of git or upload"),
])
def test_python_types_enforce_the_cel_rules_too(kind: str, spec: Obj, message: str) -> None:
    """Objects that skipped the API server's validation still fail to parse, with the CRD's own message."""
    with pytest.raises(ValueError, match=message):
        kind_for(kind).spec.model_validate(spec)


@pytest.mark.parametrize(("value", "amount"), [
    ("20Gi", 20 * 2**30), ("100G", 10**11), ("500m", Decimal("0.5")), ("1e3", 1000), ("1.5Ki", 1536), (4, 4),
    (0.5, Decimal("0.5")), ("+2k", 2000), ("1E", 10**18),
])
def test_quantities_are_read_as_the_api_server_reads_them(value: str | int | float, amount: Decimal | int) -> None:
    assert quantity_value(value) == amount


@pytest.mark.parametrize("value", ["20GB", "Gi", "1.2.3", ""])
def test_what_is_no_quantity_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity_value(value)
