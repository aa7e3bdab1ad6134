"""What a kind is to Kubernetes: names, printer columns, and the spec/status types its CRD is generated from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelplane.api.common import GROUP, VERSION, Status, Workload


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
    spec: type[Workload]
    status: type[Status]
    columns: tuple[dict[str, Any], ...] = field(default=())

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
        return [READY, REASON, *self.columns, AGE]
