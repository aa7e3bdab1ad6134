"""The platform's images, built by Cloud Build from this checkout during `pulumi up`, and run by their digests.

Why here: the first `pulumi up` on an empty project must find the operator image before the Deployment waits for it,
and the registry it lives in is created by the same `up`. The two field-standard answers are an image the project's
release workflow publishes, or the stack building it; modelplane publishes none yet, so the stack builds it. Cloud
Build needs nothing on the laptop but gcloud (which the kubeconfig's auth plugin needs anyway) and builds on amd64,
the nodes' architecture, whatever the laptop is.

One build makes both of the platform's images from one Dockerfile: the operator (`modelplane-operator`) and the
runtime (`modelplane-runtime`: the capture sidecar and the drift monitor, which run in tenant namespaces and need
numpy, scipy and scikit-learn, which the operator does not). Both carry the same tag, so the operator always runs
with the runtime of its own checkout: the payload records the sidecar writes and the report the monitor writes are
a contract between them.

What is built is exactly what `.gcloudignore` lets `gcloud builds submit` upload: the files the Dockerfile copies.
Their digest is the images' tag, `<version>-<digest>`: the platform repository's tags are immutable, so a changed
checkout is a new tag, an unchanged one is never built twice (the script looks in the registry first), and the
Deployment and the operator's configuration name the digests the registry reports for that tag. Cloud Build pushes
the images when every step has passed; should a push fail after the other one succeeded, the next build cannot push
that tag again (it is immutable): delete the lone image (`gcloud artifacts docker images delete`) and run again.

The build runs as the stack's release service account, which may push to the platform repository and nothing else
of the platform's; no Kubernetes service account can act as it, so no tenant reaches it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec
import pulumi
import pulumi_command as command
from pulumi_gcp import artifactregistry, serviceaccount, storage
from pulumi_gcp.provider import Provider as GcpProvider

from modelplane.images import OPERATOR_IMAGE_NAME, OPERATOR_VERSION
from modelplane.names import RUNTIME_IMAGE_NAME

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_CONFIG = "platform/operator/cloudbuild.yaml"

# The images the build pushes, by name in the platform repository (platform/operator/cloudbuild.yaml builds each
# from its Dockerfile target).
IMAGE_NAMES = (OPERATOR_IMAGE_NAME, RUNTIME_IMAGE_NAME)

BUILD_SCRIPT = """set -eu
built=yes
for name in $IMAGES; do
  gcloud artifacts docker images describe "$REGISTRY/$name:$TAG" --project "$PROJECT" >/dev/null 2>&1 || built=no
done
if [ "$built" = yes ]; then
  echo "$IMAGES at $TAG are in $REGISTRY already"
  exit 0
fi
gcloud builds submit . --project "$PROJECT" --region "$REGION" --config "$CONFIG" \\
  --substitutions "_REGISTRY=$REGISTRY,_TAG=$TAG" --service-account "projects/$PROJECT/serviceAccounts/$BUILDER" \\
  --gcs-source-staging-dir "gs://$SOURCE_BUCKET/source"
"""


def build_context(root: Path = REPO_ROOT) -> list[Path]:
    """The files `gcloud builds submit` uploads: every file `.gcloudignore` does not exclude (gitignore rules)."""
    ignore = pathspec.GitIgnoreSpec.from_lines((root / ".gcloudignore").read_text().splitlines())
    found: list[Path] = []
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        top = here == root
        # An excluded directory is not entered: as in git, nothing below it can be re-included (and .venv, .git or
        # a build output are never walked, which made every plan read tens of thousands of names).
        dirs[:] = [d for d in dirs if not (top and d.startswith("."))
                   and not ignore.match_file((here / d).relative_to(root).as_posix() + "/")]
        found += [here / f for f in files if not (top and f.startswith("."))
                  and not ignore.match_file((here / f).relative_to(root).as_posix())]
    return sorted(found)


def source_tag(root: Path = REPO_ROOT) -> str:
    """`<version>-<12 hex>`: the digest of the build context's names and contents."""
    digest = hashlib.sha256()
    for path in build_context(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{OPERATOR_VERSION}-{digest.hexdigest()[:12]}"


SOURCE_EXPIRY_DAYS = 7  # staged contexts are only read by the build that follows


def by_digest(image: str, repository: artifactregistry.Repository, region: str, provider: GcpProvider,
              parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.Output[str]:
    """`<registry>/<image>@sha256:<digest>` for `image` (`name:tag`) in the platform repository, as the registry
    reports it at `pulumi up`: the tag is immutable there, and pods name the digest all the same. Offline the plan
    has no registry to ask, and names the image by its tag (infra/offline.py)."""
    found = artifactregistry.get_docker_image_output(
        location=region, repository_id=repository.repository_id, image_name=image,
        opts=pulumi.InvokeOutputOptions(parent=parent, provider=provider, depends_on=list(depends_on)))
    return found.self_link


@dataclass(frozen=True)
class PlatformImagesArgs:
    project: str
    region: str
    bucket_name: str  # where gcloud stages the uploaded context
    repository: artifactregistry.Repository  # the platform repository, where the release account may push
    registry_url: pulumi.Input[str]
    builder: serviceaccount.Account  # the release service account the build runs as
    provider: GcpProvider


class PlatformImages(pulumi.ComponentResource):
    """`operator` and `runtime`: the platform's images by digest, once built (or found) in the platform repository."""

    operator: pulumi.Output[str]
    runtime: pulumi.Output[str]

    def __init__(self, name: str, args: PlatformImagesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The type and the resource names are those of the component when it built the operator alone: a deployed
        # stack keeps its resources (a new name would create the staging bucket again, under a global name GCS
        # still holds for the old one, before deleting the old one).
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
            environment={"REGISTRY": args.registry_url, "TAG": tag, "IMAGES": " ".join(IMAGE_NAMES),
                         "PROJECT": args.project, "REGION": args.region, "CONFIG": BUILD_CONFIG,
                         "BUILDER": args.builder.email, "SOURCE_BUCKET": source.name},
            triggers=[tag],  # a new checkout is a new image; the same one is looked up, not rebuilt
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.repository, reads]),
        )
        self.operator = by_digest(f"{OPERATOR_IMAGE_NAME}:{tag}", args.repository, args.region, args.provider,
                                  self, [build])
        self.runtime = by_digest(f"{RUNTIME_IMAGE_NAME}:{tag}", args.repository, args.region, args.provider,
                                 self, [build])
        self.register_outputs({"operator": self.operator, "runtime": self.runtime})
