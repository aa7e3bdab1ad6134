"""What a kind is to Kubernetes: names, printer columns, and the spec/status types its CRD is generated from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from modelplane.api.common import DNS_LABEL, GROUP, VERSION, ApiModel, Status, rule

# What the API server admits as a custom resource's name is a DNS-1123 subdomain (up to 253 characters, dots
# allowed); the operator needs less, so these root rules (CEL sees metadata.name at the root) say why.
MAX_NAME = 63
NAME_RULES = (
    rule(f"self.metadata.name.size() <= {MAX_NAME}",
         f"metadata.name must be at most {MAX_NAME} characters: it is the value of the label modelplane.dev/name "
         f"(label values are at most {MAX_NAME}) and part of the names of the objects the operator creates"),
    rule(f"self.metadata.name.matches('{DNS_LABEL}')",
         "metadata.name must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a "
         "letter or digit, without '.' (it becomes a label value and part of the names of the objects the operator "
         "creates)"),
)
# Kinds served through a Service named after the object: Service names are DNS-1035 labels.
SERVICE_NAME_RULE = rule(
    "self.metadata.name.matches('^[a-z]')",
    "metadata.name must start with a letter (a DNS-1035 label): a Service is named after this object")


def column(name: str, json_path: str, type_: str = "string", description: str = "",
           priority: int = 0) -> dict[str, Any]:
    """An additionalPrinterColumn; priority 1 shows only with `kubectl get -o wide`."""
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if description:
        col["description"] = description
    if priority:
        col["priority"] = priority
    return col


READY = column("Ready", ".status.ready", "boolean", "Whether the object is ready for use")
REASON = column("Reason", '.status.conditions[?(@.type=="Ready")].reason', description="Why it is (not) ready")
AGE = column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_name: str
    description: str
    spec: type[ApiModel]
    status: type[Status]
    columns: tuple[dict[str, Any], ...] = field(default=())
    name_rules: tuple[dict[str, str], ...] = field(default=())
    record: bool = False  # a record the operator writes once (ModelVersion): no Ready to show, a spec never edited

    @property
    def validations(self) -> list[dict[str, str]]:
        """The root's CEL rules: what the operator needs of metadata.name (every kind's, then this kind's own)."""
        return [*NAME_RULES, *self.name_rules]

    def status_problems(self, status: dict[str, Any]) -> list[str]:
        """What the API server would refuse or prune in a status the operator is about to write: values that break
        the kind's status type, and keys it does not declare (pruned silently, then read back as missing). A None is
        a merge patch's deletion and always fine."""
        try:
            typed = self.status.model_validate(status).model_dump(by_alias=True, mode="json")
        except ValidationError as error:
            return [f"status.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        return _undeclared(status, typed, "status")

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"

    @property
    def printer_columns(self) -> list[dict[str, Any]]:
        """Ready and Reason first, the kind's own next, Age last: the order `kubectl get` users expect."""
        return [*(() if self.record else (READY, REASON)), *self.columns, AGE]


def _undeclared(written: Any, typed: Any, path: str) -> list[str]:
    """The keys of `written` (not None) that its typed round trip lost: the type does not declare them."""
    if isinstance(written, dict) and isinstance(typed, dict):
        return [problem for key, value in written.items() if value is not None
                for problem in ([f"{path}.{key}: not declared by the status type"] if key not in typed
                                else _undeclared(value, typed[key], f"{path}.{key}"))]
    if isinstance(written, list) and isinstance(typed, list):
        return [problem for index, (item, kept) in enumerate(zip(written, typed, strict=False))
                for problem in _undeclared(item, kept, f"{path}[{index}]")]
    return []
