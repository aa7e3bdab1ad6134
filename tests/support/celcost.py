"""A conservative estimate of what the API server's CEL cost check says of a CRD's `x-kubernetes-validations`.

The API server refuses a CRD when a rule's estimated cost times the number of times it can run exceeds
`StaticEstimatedCostLimit`, or all rules together exceed `StaticEstimatedCRDCostLimit` (apiextensions-apiserver
pkg/apis/apiextensions/validation/validation.go, read at 1aa2717a552e); a rule that costs more than `PerCallLimit`
(apiserver pkg/apis/cel/config.go) is also aborted at run time. The estimate follows cel-go's `checker/cost.go`:

- sizes come from the schema as `SchemaDeclType` (apiserver pkg/cel/common/schemas.go) derives them: a string's
  `maxLength` x 4 (bytes per code point), a list's `maxItems`, a map's `maxProperties`; without a bound, what fits
  in a 3 MiB request. At the root, `metadata.name` is capped at 253 (apiextensions model/schemas.go:
  `cappedLengthStringType`). Untyped nodes (preserve-unknown-fields without type) are invisible to CEL, so a rule
  that reads one cannot compile (`defaultConverter`: "unable to convert structural schema to CEL declarations");
- selecting a field or a variable costs 1; `size`, comparisons and other O(1) calls 1; `startsWith`/`endsWith`
  0.1 x the argument's length; `contains` 0.1 x both lengths multiplied; `matches` 0.1 x (string length + 1) x
  0.25 x the pattern's length; string equality 0.1 x the shorter length; `&&`, `||` and `?:` add both sides;
- `all`/`exists`/`exists_one`/`map`/`filter` cost the range's size x (body + 2);
- a rule's cost is multiplied by the cardinality of its node: the product of maxItems/maxProperties of the lists and
  maps above it (unbounded: what fits in a request).

Where it is stricter than cel-go: every string, list or map a rule reads must carry a bound in the schema, whatever
the cost (the lead's rule: no rule may depend on the request size limit). Map keys, which a schema cannot bound (and
which cel-go estimates as empty strings), count as unbounded until the rule guards them with `k.size() <= N && ...`;
the guard narrows them for the right-hand side, as its short-circuit does at run time.
Not modelled: `oldSelf` costs the same as `self`; messageExpression (unused here); list/map literals; extension
libraries other than the string functions above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import celpy
from lark import Token, Tree

PER_CALL_LIMIT = 1_000_000
STATIC_ESTIMATED_COST_LIMIT = 10_000_000
STATIC_ESTIMATED_CRD_COST_LIMIT = 100_000_000
MAX_REQUEST_SIZE = 3 * 1024 * 1024
NAME_CAP = 253
MACROS = {"all", "exists", "exists_one", "map", "filter"}

Schema = dict[str, Any]
Node = Tree[Token] | Token


@dataclass(frozen=True)
class Value:
    """What an expression evaluates to, as far as cost goes: its schema (if any), worst-case size, boundedness."""

    schema: Schema | None = None
    size: int = 0
    bounded: bool = True
    key_of: Schema | None = None  # a map key: the map's schema


@dataclass
class Estimate:
    cost: int = 0
    problems: list[str] = field(default_factory=list)


def _size(schema: Schema | None) -> tuple[int, bool]:
    """Worst-case size and whether the schema bounds it (SchemaDeclType's MaxElements)."""
    if schema is None:
        return 0, True
    kind = schema.get("type")
    if kind == "string" or schema.get("x-kubernetes-int-or-string"):
        if "maxLength" in schema:
            return schema["maxLength"] * 4, True
        if "enum" in schema:
            return max(len(v) for v in schema["enum"]), True
        return MAX_REQUEST_SIZE - 2, False
    if kind == "array":
        return (schema["maxItems"], True) if "maxItems" in schema else (MAX_REQUEST_SIZE // 2, False)
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return (schema["maxProperties"], True) if "maxProperties" in schema else (MAX_REQUEST_SIZE // 8, False)
    return 0, True


def _value(schema: Schema | None) -> Value:
    size, bounded = _size(schema)
    return Value(schema, size, bounded)


def root_view(schema: Schema) -> Schema:
    """The root as CEL sees it: kind, apiVersion and metadata.name/generateName always there, names capped at 253."""
    meta_props = schema.get("properties", {}).get("metadata", {}).get("properties", {})

    def capped(name: str, cap: int) -> Schema:
        return {"type": "string", "maxLength": min(cap, meta_props.get(name, {}).get("maxLength", cap))}

    metadata = {"type": "object", "properties": {"name": capped("name", NAME_CAP),
                                                 "generateName": capped("generateName", NAME_CAP - 1)}}
    return {**schema, "properties": {**schema.get("properties", {}), "kind": {"type": "string"},
                                     "apiVersion": {"type": "string"}, "metadata": metadata}}


class _Coster:
    def __init__(self, self_schema: Schema, path: str) -> None:
        self.vars: dict[str, Value] = {"self": _value(self_schema), "oldSelf": _value(self_schema)}
        self.narrowed: dict[str, int] = {}  # source text of a string -> size, under a guard `X.size() <= N &&`
        self.path = path
        self.problems: list[str] = []

    def read(self, value: Value, what: str) -> None:
        """A string function, an iteration or a comparison reads `value` whole: it must be bounded."""
        if not value.bounded:
            self.problems.append(f"{self.path}: {what} reads an unbounded {'map key' if value.key_of else 'value'} "
                                 "(add maxLength/maxItems/maxProperties, or guard keys with k.size() <= N &&)")

    def cost(self, node: Node) -> tuple[int, Value]:
        cost, value = self._cost(node)
        if isinstance(node, Tree) and node.data in ("ident", "member_dot", "member_index"):
            limit = self.narrowed.get(_source(node))
            if limit is not None:
                value = Value(value.schema, min(value.size, limit * 4), True, value.key_of)
        return cost, value

    def _cost(self, node: Node) -> tuple[int, Value]:
        if isinstance(node, Token):
            return 0, Value()
        kind, kids = node.data, node.children
        if kind == "expr" and len(kids) == 3:
            (c, _), (t, tv), (f, fv) = (self.cost(k) for k in kids)
            return c + max(t, f), tv if tv.size >= fv.size else fv
        if kind == "conditionaland" and len(kids) == 2:
            left, _ = self.cost(kids[0])
            guard = _size_guard(kids[0])
            saved = dict(self.narrowed)
            if guard:
                self.narrowed[guard[0]] = guard[1]
            right, _ = self.cost(kids[1])
            self.narrowed = saved
            return left + right, Value()
        if kind in ("conditionalor", "addition", "multiplication") and len(kids) == 2:
            (left, lv), (right, rv) = self.cost(kids[0]), self.cost(kids[1])
            return left + right + 1, Value(None, lv.size + rv.size, lv.bounded and rv.bounded)
        if kind == "relation" and len(kids) == 2:
            (left, lv), (right, rv) = self.cost(kids[0]), self.cost(kids[1])
            extra = 1
            if _data(kids[0]) in ("relation_eq", "relation_ne") and lv.schema and lv.schema.get("type") == "string":
                self.read(lv, "string equality")
                extra = math.ceil(min(lv.size, rv.size or lv.size) * 0.1) or 1
            if _data(kids[0]) == "relation_in":
                self.read(rv, "'in'")
                extra = rv.size
            return left + right + extra, Value()
        if kind == "unary" and len(kids) == 2:
            inner, value = self.cost(kids[1])
            return inner + 1, value
        if kind == "member_dot":
            inner, value = self.cost(kids[0])
            props = (value.schema or {}).get("properties", {})
            name = str(kids[1])
            if value.schema is not None and name not in props:
                self.problems.append(f"{self.path}: CEL cannot see field {name!r}")
            return inner + 1, _value(props.get(name))
        if kind == "member_index":
            (inner, value), (index, _) = self.cost(kids[0]), self.cost(kids[1])
            schema = value.schema or {}
            elem = schema.get("items") if schema.get("type") == "array" else schema.get("additionalProperties")
            return inner + index + 1, _value(elem if isinstance(elem, dict) else None)
        if kind == "member_dot_arg":
            return self._method(kids)
        if kind == "ident":
            name = str(kids[0])
            return 1, self.vars.get(name, Value())
        if kind == "ident_arg":
            args = _children(kids[1]) if len(kids) > 1 else []
            costs = [self.cost(a) for a in args]
            return sum(c for c, _ in costs) + (0 if str(kids[0]) == "has" else 1), Value()
        if kind == "literal":
            text = str(kids[0])
            if text[:1] in "'\"":
                return 0, Value({"type": "string"}, len(text) - 2, True)
            return 0, Value()
        if len(kids) == 1:
            return self.cost(kids[0])
        costs = [self.cost(k) for k in kids]
        return sum(c for c, _ in costs) + 1, Value()

    def _method(self, kids: list[Any]) -> tuple[int, Value]:
        target_cost, target = self.cost(kids[0])
        name = str(kids[1])
        args = _children(kids[2]) if len(kids) > 2 else []
        if name in MACROS:
            self.read(target, f"{name}()")
            schema = target.schema or {}
            var = _source(args[0])
            saved = dict(self.vars)
            if schema.get("type") == "array":
                self.vars[var] = _value(schema.get("items"))
            else:  # a map iterates its keys
                self.vars[var] = Value({"type": "string"}, MAX_REQUEST_SIZE - 2, False, key_of=schema)
            body = sum(self.cost(a)[0] for a in args[1:])
            self.vars = saved
            return target_cost + target.size * (body + 2), Value()
        costs = [self.cost(a) for a in args]
        arg_cost = sum(c for c, _ in costs)
        arg = costs[0][1] if costs else Value()
        if name in ("startsWith", "endsWith"):
            return target_cost + arg_cost + math.ceil(arg.size * 0.1), Value()
        if name == "contains":
            self.read(target, "contains()")
            return target_cost + arg_cost + math.ceil(target.size * 0.1) * math.ceil(arg.size * 0.1), Value()
        if name == "matches":
            self.read(target, "matches()")
            return target_cost + arg_cost + math.ceil((target.size + 1) * 0.1) * math.ceil(arg.size * 0.25), Value()
        return target_cost + arg_cost + 1, Value()


def _data(node: Node) -> str:
    return str(node.data) if isinstance(node, Tree) else ""


def _children(node: Node) -> list[Node]:
    return list(node.children) if isinstance(node, Tree) else []


def _size_guard(node: Node) -> tuple[str, int] | None:
    """`X.size() <= N` (or `<`): the guard that bounds X for the right-hand side of `&&`."""
    text = _source(node)
    for op, slack in (("<=", 0), ("<", 1)):
        left, found, right = (part.strip() for part in text.partition(op))
        if found and left.endswith(".size()") and right.isdigit():
            return left.removesuffix(".size()"), int(right) - slack
    return None


def _source(node: Node) -> str:
    """The text of a small subtree (identifiers, calls, literals), for recognising guards and macro variables."""
    if isinstance(node, Token):
        return str(node)
    kids = node.children
    if node.data == "member_dot_arg":
        args = ", ".join(_source(a) for a in (_children(kids[2]) if len(kids) > 2 else []))
        return f"{_source(kids[0])}.{kids[1]}({args})"
    if node.data == "member_dot":
        return f"{_source(kids[0])}.{kids[1]}"
    if node.data == "member_index":
        return f"{_source(kids[0])}[{_source(kids[1])}]"
    if node.data == "relation" and len(kids) == 2:
        op = {"relation_le": "<=", "relation_lt": "<"}.get(_data(kids[0]), "?")
        return f"{_source(kids[0])} {op} {_source(kids[1])}"
    return "".join(_source(k) for k in kids)


_parser = celpy.Environment()


@dataclass(frozen=True)
class RuleCost:
    path: str
    rule: str
    cost: int
    cardinality: int
    problems: tuple[str, ...]

    @property
    def total(self) -> int:
        return self.cost * self.cardinality


def rule_costs(schema: Schema, path: str = "openAPIV3Schema", cardinality: int = 1,
               root: bool = True) -> list[RuleCost]:
    """Every rule of `schema` (recursively) with its estimated cost, cardinality and problems."""
    view = root_view(schema) if root else schema
    results = []
    for validation in schema.get("x-kubernetes-validations", []):
        coster = _Coster(view, path)
        if schema.get("type") is None and not schema.get("x-kubernetes-int-or-string"):
            coster.problems.append(f"{path}: a rule on an untyped node cannot compile (CEL cannot see it)")
        cost, _ = coster.cost(_parser.compile(validation["rule"]))
        results.append(RuleCost(path, validation["rule"], cost, cardinality, tuple(coster.problems)))
    for name, prop in schema.get("properties", {}).items():
        results += rule_costs(prop, f"{path}.{name}", cardinality, False)
    for key in ("items", "additionalProperties"):
        child = schema.get(key)
        if isinstance(child, dict):
            size, _ = _size(schema)
            results += rule_costs(child, f"{path}.{key}", cardinality * max(size, 1), False)
    return results


def cost_problems(schema: Schema) -> list[str]:
    """Why the API server would refuse (or abort) the rules of this CRD schema; empty if they fit every budget."""
    costs = rule_costs(schema)
    problems = [p for c in costs for p in c.problems]
    problems += [f"{c.path}: rule {c.rule!r} costs {c.cost} > PerCallLimit {PER_CALL_LIMIT}" for c in costs
                 if c.cost > PER_CALL_LIMIT]
    problems += [f"{c.path}: rule {c.rule!r} costs {c.cost} x cardinality {c.cardinality} > "
                 f"StaticEstimatedCostLimit {STATIC_ESTIMATED_COST_LIMIT}" for c in costs
                 if c.total > STATIC_ESTIMATED_COST_LIMIT]
    total = sum(c.total for c in costs)
    if total > STATIC_ESTIMATED_CRD_COST_LIMIT:
        problems.append(f"all rules cost {total} > StaticEstimatedCRDCostLimit {STATIC_ESTIMATED_CRD_COST_LIMIT}")
    return problems
