"""One bucket holds every artifact: `gs://<bucket>/<namespace>/<kind>s/<name>/...` plus `uploads/` for builds
(modelplane/layout.py).

Deterministic paths mean a re-created cluster finds its data again, so the bucket outlives clusters: it is
versioned, soft-deleted, never force-destroyed, and protected from `pulumi destroy` when deletion protection is on.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import storage

from infra.config import BucketSettings
from modelplane.layout import UPLOADS_PREFIX


@dataclass(frozen=True)
class ArtifactBucketArgs:
    name: str
    settings: BucketSettings
    protect: bool


class ArtifactBucket(pulumi.ComponentResource):
    bucket: storage.Bucket

    def __init__(self, name: str, args: ArtifactBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:ArtifactBucket", name, None, opts)
        s = args.settings
        self.bucket = storage.Bucket(
            name,
            name=args.name,
            location=s.location,
            storage_class=s.storage_class,
            uniform_bucket_level_access=True,  # GCS FUSE with Workload Identity needs it (else HTTP 412)
            public_access_prevention="enforced",
            versioning={"enabled": True},
            soft_delete_policy={"retention_duration_seconds": s.soft_delete_days * 86400},
            force_destroy=False,
            lifecycle_rules=[
                {"action": {"type": "Delete"},
                 "condition": {"age": s.uploads_expire_days, "matches_prefixes": [UPLOADS_PREFIX]}},
                {"action": {"type": "Delete"},
                 "condition": {"days_since_noncurrent_time": s.noncurrent_expire_days, "with_state": "ARCHIVED"}},
            ],
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.register_outputs({"name": self.bucket.name, "url": self.bucket.url})
