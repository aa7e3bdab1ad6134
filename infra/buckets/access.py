"""Bucket-scoped IAM: no project-wide storage roles, and each tenant limited to its own prefix."""

from dataclasses import dataclass
from functools import partial

import pulumi
from pulumi_gcp import storage

OBJECT_USER = "roles/storage.objectUser"  # read, write, delete objects
OBJECT_VIEWER = "roles/storage.objectViewer"  # read objects


def prefix_condition(bucket: str, prefix: str) -> str:
    """CEL that admits objects under `prefix`, and listings asked for under it (a listing names no object).

    The prefix must end in `/`: `uploads/ml` would also admit `uploads/ml-research/`."""
    if not prefix.endswith("/"):
        raise ValueError(f"a prefix grant must end in '/': {prefix!r}")
    return (f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}") || '
            f'api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("{prefix}")')


@dataclass(frozen=True)
class PrefixGrant:
    """`member` may use objects under `prefix` with `role` (objectViewer read-only, objectUser read-write)."""

    title: str
    member: pulumi.Input[str]
    role: str
    prefix: str


@dataclass(frozen=True)
class BucketAccessArgs:
    bucket: pulumi.Output[str]
    whole_bucket: dict[str, pulumi.Input[str]]  # title -> member with read/write on everything (the operator)
    prefix_grants: list[PrefixGrant]


class BucketAccess(pulumi.ComponentResource):
    def __init__(self, name: str, args: BucketAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:BucketAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for title, member in args.whole_bucket.items():
            storage.BucketIAMMember(f"{name}-{title}", bucket=args.bucket, role=OBJECT_USER,
                                        member=member, opts=child)
        for grant in args.prefix_grants:
            storage.BucketIAMMember(
                f"{name}-{grant.title}",
                bucket=args.bucket,
                role=grant.role,
                member=grant.member,
                condition={"title": grant.title, "description": f"objects under {grant.prefix} only",
                           "expression": args.bucket.apply(partial(prefix_condition, prefix=grant.prefix))},
                opts=child,
            )
        self.register_outputs({})

