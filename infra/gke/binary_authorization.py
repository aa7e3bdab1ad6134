"""The project's Binary Authorization policy: GKE admits only the images the platform knows.

Allowed: the platform's repository and each tenant's (what the platform and its builders push), the images the stack
runs (server, notebook, builder, the build helpers), any `binaryAuthorization.allow` pattern, and Google's own GKE
system images (`globalPolicyEvaluationMode: ENABLE`). Anything else is refused (`enforce`) or only written to the
audit log (`dryrun`, for trying a policy out). The policy is a project singleton: one stack per project owns it.

Pattern rules (AdmissionWhitelistPattern.name_pattern): `registry/path/to/image`, where a trailing `*` matches
within one path segment (and the tag or digest after it) and a trailing `**` also matches sub-paths.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_gcp import binaryauthorization, container

from infra.config import BinaryAuthorization

ENFORCEMENT = {"enforce": "ENFORCED_BLOCK_AND_AUDIT_LOG", "dryrun": "DRYRUN_AUDIT_LOG_ONLY"}


def cluster_setting(settings: BinaryAuthorization) -> container.ClusterBinaryAuthorizationArgsDict:
    """The cluster evaluates the project's policy, unless the stack turned it off."""
    return {"evaluation_mode": "DISABLED" if settings.mode == "off" else "PROJECT_SINGLETON_POLICY_ENFORCE"}


def image_pattern(image: str) -> str:
    """The pattern that admits `image` by its repository: `docker.io/vllm/vllm-openai:*` for
    `docker.io/vllm/vllm-openai:v0.11.0@sha256:...`. A pattern holding a tag and a digest is undocumented, so the
    documented trailing `*` (no `/` after it) stands in; the pods still name the digest the stack pins."""
    name, last = image.rsplit("/", 1)
    separator = ":" if ":" in last else "@"
    return f"{name}/{last.split(separator, 1)[0]}{separator}*"


def allowlist(repositories: Sequence[str], images: Sequence[str], extra: Sequence[str]) -> list[str]:
    """Every image in the platform's and the tenants' repositories, the images the stack runs, and `extra`."""
    return sorted({*(f"{repository}/**" for repository in repositories), *map(image_pattern, images), *extra})


@dataclass(frozen=True)
class AdmissionPolicyArgs:
    project: str
    settings: BinaryAuthorization
    allow: pulumi.Input[Sequence[str]]


class AdmissionPolicy(pulumi.ComponentResource):
    def __init__(self, name: str, args: AdmissionPolicyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:infra:AdmissionPolicy", name, None, opts)
        binaryauthorization.Policy(
            name,
            project=args.project,
            description="modelplane: the platform's and the tenants' repositories, and the images the stack runs",
            global_policy_evaluation_mode="ENABLE",
            admission_whitelist_patterns=pulumi.Output.from_input(args.allow).apply(
                lambda patterns: [{"name_pattern": pattern} for pattern in patterns]),
            default_admission_rule={"evaluation_mode": "ALWAYS_DENY",
                                    "enforcement_mode": ENFORCEMENT[args.settings.mode]},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
