"""The Artifact Registry repository for images the platform builds (Model/Dataset/Notebook `build:`)."""

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.config import RegistrySettings


@dataclass(frozen=True)
class RegistryArgs:
    name: str
    region: str
    settings: RegistrySettings
    pullers: list[pulumi.Input[str]]
    pushers: list[pulumi.Input[str]]
    protect: bool


class Registry(pulumi.ComponentResource):
    repository: gcp.artifactregistry.Repository
    url: pulumi.Output[str]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:Registry", name, None, opts)
        self.repository = gcp.artifactregistry.Repository(
            name,
            repository_id=args.name,
            location=args.region,
            format="DOCKER",
            description="Images built by modelplane from git repositories and uploads",
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
                gcp.artifactregistry.RepositoryIamMember(
                    f"{name}-{role.rsplit('.', 1)[1]}-{i}",
                    repository=self.repository.name,
                    location=args.region,
                    role=role,
                    member=member,
                    opts=pulumi.ResourceOptions(parent=self),
                )
        self.register_outputs({"url": self.url})
