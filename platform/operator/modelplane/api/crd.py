"""Generate the CustomResourceDefinitions from the API types (our controller-gen).

    python -m modelplane.api.crd            # rewrite platform/crds/*.yaml
    python -m modelplane.api.crd --check    # exit 1 if a checked-in CRD differs from the types

Pydantic's JSON Schema is turned into a structural OpenAPI v3 schema: references inlined, `Optional` unwrapped,
titles dropped, free-form maps marked `x-kubernetes-preserve-unknown-fields`, so the API server can prune,
default and validate (CEL included) every field.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from modelplane.api.common import GROUP, VERSION, ApiModel
from modelplane.api.kinds import KINDS
from modelplane.api.resource import Kind

CRDS_DIR = Path(__file__).resolve().parents[3] / "crds"
HEADER = "# Generated from modelplane/api by `python -m modelplane.api.crd`. Do not edit.\n"
_DROP = {"title", "$defs"}
# pydantic writes JSON Schema 2020-12's numeric `exclusiveMinimum: 0`; a CRD's schema is OpenAPI v3.0's, where the
# bound is `minimum` and `exclusiveMinimum` a boolean (apiextensions/v1 JSONSchemaProps: `ExclusiveMinimum bool`),
# and the API server refuses a number there.
_EXCLUSIVE = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One JSON-Schema node of pydantic's output as a structural schema node."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[1]]
        node = {**target, **node}
    if "anyOf" in node and any("type" in branch for branch in node["anyOf"]):  # a union of types: Optional[X] only
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise TypeError(f"unions cannot be structural: {branches}")
        node = {**branches[0], **node}
        if node.get("default", ...) is None:
            del node["default"]
        return structural(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: structural(prop, defs) for name, prop in value.items()}
        elif key == "items":
            out[key] = structural(value, defs)
        elif key in _EXCLUSIVE and not isinstance(value, bool):
            out[_EXCLUSIVE[key]], out[key] = value, True
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            else:
                out[key] = structural(value, defs)
        else:
            out[key] = value
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return out


def schema_of(model: type[ApiModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}))


def crd_for(kind: Kind) -> dict[str, Any]:
    spec = schema_of(kind.spec)
    spec["description"] = (kind.spec.__doc__ or "").strip().replace("\n    ", " ")
    status = schema_of(kind.status)
    status["description"] = "Observed state, written by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "modelplane"}},
        "spec": {
            "group": GROUP,
            "names": {"kind": kind.kind, "listKind": f"{kind.kind}List", "plural": kind.plural,
                      "singular": kind.singular, "shortNames": [kind.short_name], "categories": ["modelplane"]},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": kind.printer_columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": kind.description,
                    "required": ["spec"],
                    "x-kubernetes-validations": kind.validations,
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status,
                    },
                }},
            }],
        },
    }


class _PlainDumper(yaml.SafeDumper):
    """No YAML anchors: each CRD reads on its own, the way kubectl and reviewers expect."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(kind: Kind) -> str:
    return HEADER + yaml.dump(crd_for(kind), Dumper=_PlainDumper, sort_keys=False, width=120)


def stale(crds_dir: Path = CRDS_DIR) -> list[str]:
    """The CRD files that differ from what the types generate (missing and extra files included)."""
    expected = {f"{kind.plural}.yaml": render(kind) for kind in KINDS}
    present = {path.name for path in crds_dir.glob("*.yaml")}
    changed = [name for name, text in expected.items()
               if not (crds_dir / name).is_file() or (crds_dir / name).read_text() != text]
    return sorted(changed + [name for name in present - set(expected)])


def write(crds_dir: Path = CRDS_DIR) -> None:
    crds_dir.mkdir(parents=True, exist_ok=True)
    for kind in KINDS:
        (crds_dir / f"{kind.plural}.yaml").write_text(render(kind))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelplane.api.crd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if platform/crds differs from the types")
    parser.add_argument("--out", type=Path, default=CRDS_DIR)
    args = parser.parse_args(argv)
    if args.check:
        differing = stale(args.out)
        if differing:
            print(f"stale CRDs in {args.out}: {', '.join(differing)}; run python -m modelplane.api.crd",
                  file=sys.stderr)
            return 1
        return 0
    write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
