"""Artifact Registry repositories: one for the platform's own images, one per tenant for the images it builds.

Artifact Registry grants access per repository (no IAM conditions on images inside one), so a repository is the
smallest scope a builder's push right can have. The platform repository holds the operator image: only the release
account writes to it (the Cloud Build of infra/operator_image.py; no pod can act as it), and its tags are immutable,
so a version, once pushed, names the same bytes forever. Tenant repositories keep mutable tags: a build from a branch
re-tags `:<branch>`, and the layer cache is re-written on every build.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import artifactregistry

from infra.config import RegistrySettings


@dataclass(frozen=True)
class RegistryArgs:
    repository_id: str
    region: str
    description: str
    settings: RegistrySettings
    pullers: list[pulumi.Input[str]]
    pushers: list[pulumi.Input[str]]
    immutable_tags: bool
    protect: bool


class Registry(pulumi.ComponentResource):
    repository: artifactregistry.Repository
    url: pulumi.Output[str]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:Registry", name, None, opts)
        self.repository = artifactregistry.Repository(
            name,
            repository_id=args.repository_id,
            location=args.region,
            format="DOCKER",
            description=args.description,
            docker_config={"immutable_tags": args.immutable_tags},
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                {"id": "keep-recent", "action": "KEEP",
                 "most_recent_versions": {"keep_count": args.settings.keep_recent}},
                {"id": "delete-untagged", "action": "DELETE",
                 "condition": {"tag_state": "UNTAGGED",
                               "older_than": f"{args.settings.untagged_expire_days * 86400}s"}},
            ],
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.url = self.repository.registry_uri
        for role, members in (("roles/artifactregistry.reader", args.pullers),
                              ("roles/artifactregistry.writer", args.pushers)):
            for i, member in enumerate(members):
                artifactregistry.RepositoryIamMember(
                    f"{name}-{role.rsplit('.', 1)[1]}-{i}",
                    repository=self.repository.name,
                    location=args.region,
                    role=role,
                    member=member,
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.register_outputs({"url": self.url})
