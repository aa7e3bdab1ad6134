"""The operator's image, built by Cloud Build from this checkout during `pulumi up`, and run by its digest.

Why here: the first `pulumi up` on an empty project must find the operator image before the Deployment waits for it,
and the registry it lives in is created by the same `up`. The two field-standard answers are an image the project's
release workflow publishes, or the stack building it; modelplane publishes none yet, so the stack builds it. Cloud
Build needs nothing on the laptop but gcloud (which the kubeconfig's auth plugin needs anyway) and builds on amd64,
the nodes' architecture, whatever the laptop is.

What is built is exactly what `.gcloudignore` lets `gcloud builds submit` upload: the files the Dockerfile copies.
Their digest is the image's tag, `<version>-<digest>`: the platform repository's tags are immutable, so a changed
checkout is a new tag, an unchanged one is never built twice (the script looks in the registry first), and the
Deployment names the digest the registry reports for that tag.

The build runs as the stack's release service account, which may push to the platform repository and nothing else
of the platform's; no Kubernetes service account can act as it, so no tenant reaches it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pathspec
import pulumi
import pulumi_command as command
from pulumi_gcp import artifactregistry, serviceaccount, storage
from pulumi_gcp.provider import Provider as GcpProvider

from modelplane.images import OPERATOR_IMAGE_NAME, OPERATOR_VERSION

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_CONFIG = "platform/operator/cloudbuild.yaml"

BUILD_SCRIPT = """set -eu
if gcloud artifacts docker images describe "$IMAGE" --project "$PROJECT" >/dev/null 2>&1; then
  echo "$IMAGE is in the registry already"
  exit 0
fi
gcloud builds submit . --project "$PROJECT" --region "$REGION" --config "$CONFIG" \\
  --substitutions "_IMAGE=$IMAGE" --service-account "projects/$PROJECT/serviceAccounts/$BUILDER" \\
  --gcs-source-staging-dir "gs://$SOURCE_BUCKET/source"
"""


def build_context(root: Path = REPO_ROOT) -> list[Path]:
    """The files `gcloud builds submit` uploads: every file `.gcloudignore` does not exclude (gitignore rules)."""
    ignore = pathspec.GitIgnoreSpec.from_lines((root / ".gcloudignore").read_text().splitlines())
    files = (p for p in root.rglob("*") if p.is_file() and not p.relative_to(root).parts[0].startswith("."))
    return sorted(p for p in files if not ignore.match_file(p.relative_to(root).as_posix()))


def source_tag(root: Path = REPO_ROOT) -> str:
    """`<version>-<12 hex>`: the digest of the build context's names and contents."""
    digest = hashlib.sha256()
    for path in build_context(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{OPERATOR_VERSION}-{digest.hexdigest()[:12]}"


SOURCE_EXPIRY_DAYS = 7  # staged contexts are only read by the build that follows


@dataclass(frozen=True)
class OperatorImageArgs:
    project: str
    region: str
    bucket_name: str  # where gcloud stages the uploaded context
    repository: artifactregistry.Repository  # the platform repository, where the release account may push
    registry_url: pulumi.Input[str]
    builder: serviceaccount.Account  # the release service account the build runs as
    provider: GcpProvider


class OperatorImage(pulumi.ComponentResource):
    """`image`: the operator image by digest, once built (or found) in the platform repository."""

    image: pulumi.Output[str]

    def __init__(self, name: str, args: OperatorImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:OperatorImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        source = storage.Bucket(
            f"{name}-source", name=args.bucket_name, location=args.region.upper(), uniform_bucket_level_access=True,
            public_access_prevention="enforced", force_destroy=True,  # staged sources only, never data
            soft_delete_policy={"retention_duration_seconds": 0},
            lifecycle_rules=[{"action": {"type": "Delete"}, "condition": {"age": SOURCE_EXPIRY_DAYS}}], opts=child)
        reads = storage.BucketIAMMember(f"{name}-source-reader", bucket=source.name,
                                            role="roles/storage.objectViewer", member=args.builder.member, opts=child)
        tag = source_tag()
        build = command.local.Command(
            name,
            create=BUILD_SCRIPT,
            environment={"IMAGE": pulumi.Output.concat(args.registry_url, f"/{OPERATOR_IMAGE_NAME}:{tag}"),
                         "PROJECT": args.project, "REGION": args.region, "CONFIG": BUILD_CONFIG,
                         "BUILDER": args.builder.email, "SOURCE_BUCKET": source.name},
            triggers=[tag],  # a new checkout is a new image; the same one is looked up, not rebuilt
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.repository, reads]),
        )
        found = artifactregistry.get_docker_image_output(
            location=args.region, repository_id=args.repository.repository_id,
            image_name=f"{OPERATOR_IMAGE_NAME}:{tag}",
            opts=pulumi.InvokeOutputOptions(parent=self, provider=args.provider, depends_on=[build]))
        self.image = found.self_link
        self.register_outputs({"image": self.image})
