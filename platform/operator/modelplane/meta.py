"""Who owns a child and what it is called: deterministic names, labels and owner references.

Deterministic names make every apply idempotent: an operator restarted mid-run finds the Job it created
instead of creating a second one. A child in another namespace than its owner (a build Job) carries no owner
reference, since the garbage collector treats a cross-namespace owner as absent and deletes the child: its labels
(kind, name and the owner's namespace) are how it is mapped back to its owner.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from modelplane.api.common import GROUP, VERSION

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = {MANAGED_BY_LABEL: "modelplane"}
KIND_LABEL = f"{GROUP}/kind"
NAME_LABEL = f"{GROUP}/name"
GENERATION_LABEL = f"{GROUP}/generation"
NAMESPACE_LABEL = f"{GROUP}/namespace"  # the owner's namespace, on children that live in another one
MAX_NAME = 63


@dataclass(frozen=True)
class Owner:
    """The custom resource a child belongs to."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int

    @classmethod
    def from_body(cls, body: Any) -> Owner:
        meta = body["metadata"]
        return cls(kind=body["kind"], name=meta["name"], namespace=meta["namespace"], uid=meta["uid"],
                   generation=int(meta.get("generation") or 1))


def child_name(owner: Owner, *parts: str | int, limit: int = MAX_NAME) -> str:
    """`<kind>-<name>-<parts>`, shortened with a hash when it would pass `limit`: 63 characters (a label value's
    limit), or less for a child whose controller derives longer names from it (a JobSet's pods)."""
    return _bounded("-".join([owner.kind.lower(), owner.name, *map(str, parts)]), limit)


def foreign_child_name(owner: Owner, *parts: str | int) -> str:
    """A child's name in a namespace shared by all tenants: `<namespace>-<kind>-<name>-<parts>`, with a digest of
    the owner's identity, since `-` joins could make two owners' names alike (`a` + `b-c` and `a-b` + `c`)."""
    identity = hashlib.sha256(f"{owner.namespace}/{owner.kind}/{owner.name}".encode()).hexdigest()[:6]
    return _bounded("-".join([owner.namespace, owner.kind.lower(), owner.name, identity, *map(str, parts)]))


def _bounded(name: str, limit: int = MAX_NAME) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9].rstrip('-')}-{digest}"


def labels(owner: Owner, generation: bool = True) -> dict[str, str]:
    result = {**MANAGED_BY, KIND_LABEL: owner.kind, NAME_LABEL: owner.name}
    if generation:
        result[GENERATION_LABEL] = str(owner.generation)
    return result


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": owner.kind, "name": owner.name, "uid": owner.uid,
            "controller": True, "blockOwnerDeletion": True}


def metadata(owner: Owner, name: str, generation: bool = True) -> dict[str, Any]:
    """Metadata of a child: its name, the owner's namespace, labels and the owner reference."""
    return {"name": name, "namespace": owner.namespace, "labels": labels(owner, generation),
            "ownerReferences": [owner_reference(owner)]}


def foreign_labels(owner: Owner) -> dict[str, str]:
    """The labels of a child in another namespace than its owner's: they alone lead back to the owner."""
    return {**labels(owner), NAMESPACE_LABEL: owner.namespace}


def foreign_metadata(owner: Owner, name: str, namespace: str) -> dict[str, Any]:
    """Metadata of a child in another namespace than its owner's: labels only, no owner reference (see above)."""
    return {"name": name, "namespace": namespace, "labels": foreign_labels(owner)}
