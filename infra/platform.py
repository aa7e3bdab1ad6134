"""Platform: the in-cluster half (CRDs, operator, tenants), applied to the new cluster in the same `pulumi up`.

Every object goes through a Kubernetes provider built from the cluster's own kubeconfig (gke-gcloud-auth-plugin,
no static credentials). Order comes from dependencies, never sleeps: node pools before the provider is used,
CRDs before the operator, the operator before tenants; Kueue's release before its queues, which wait for the
tenants' namespaces (their LocalQueues live there) and for Kueue itself: the provider awaits every object of the
release, the controller's Deployment until it is available, and Kueue's readiness probe passes only once its webhook
serves, which admits the queues (kueue cmd/kueue/main.go, setupProbeEndpoints at v0.19.2).

Kueue and JobSet come from their pinned release manifests (infra/queueing.py), read by the provider at `pulumi up`
from their URLs, as their installation guides apply them (`kubectl apply --server-side`; the provider applies
server-side too). The offline plan and render name the URLs and fetch nothing; render writes them into the
kustomization for GitOps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import pulumi
from pulumi_kubernetes.provider import Provider as KubernetesProvider
from pulumi_kubernetes.yaml.v2 import ConfigFile, ConfigGroup

from infra.config import StackConfig
from infra.queueing import JOBSET_MANIFESTS, KUEUE_MANIFESTS, queues
from modelplane.deploy import PlatformFacts, crds, system, tenants


def platform_facts(config: StackConfig, outputs: Mapping[str, Any]) -> PlatformFacts:
    """The facts the cluster side needs, from the stack config and the cloud side's outputs."""
    return PlatformFacts(
        project=config.project, region=config.region, bucket=outputs["bucket"], registry=outputs["registry"],
        operator_service_account=outputs["operatorServiceAccount"],
        builder_service_accounts=outputs["builderServiceAccounts"],
        gpu_pools=tuple(pool.facts for pool in config.gpu_pools),
        tenants=config.tenant_names, tenant_members={t.name: t.members for t in config.tenants},
        operator_image=outputs["operatorImage"], runtime_image=outputs["runtimeImage"],
        server_image=config.images.server,
        notebook_image=config.images.notebook, builder_image=config.images.builder)


@dataclass(frozen=True)
class PlatformArgs:
    config: StackConfig
    outputs: Mapping[str, pulumi.Input[Any]]  # the Infra component's outputs
    node_pools: list[pulumi.Resource]


class Platform(pulumi.ComponentResource):
    provider: KubernetesProvider

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelplane:platform:Platform", name, None, opts)
        self.provider = KubernetesProvider(
            "gke", kubeconfig=args.outputs["kubeconfig"], enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.node_pools))
        needed = {key: args.outputs[key] for key in ("bucket", "registry", "operatorServiceAccount",
                                                     "builderServiceAccounts", "operatorImage", "runtimeImage")}
        facts = pulumi.Output.all(**needed).apply(partial(platform_facts, args.config))
        with_provider = pulumi.ResourceOptions(parent=self, provider=self.provider)
        crd_group = ConfigGroup("crds", objs=crds(), opts=with_provider)
        system_group = ConfigGroup(
            "system", objs=facts.apply(system), opts=pulumi.ResourceOptions.merge(
                with_provider, pulumi.ResourceOptions(depends_on=[crd_group])))
        tenant_group = ConfigGroup(
            "tenants", objs=facts.apply(tenants), opts=pulumi.ResourceOptions.merge(
                with_provider, pulumi.ResourceOptions(depends_on=[system_group])))
        # JobSet first: Kueue sets up its JobSet integration when it finds the JobSet API, and the operator creates
        # JobSets only when a Model asks for several nodes.
        jobset = ConfigFile("jobset", file=JOBSET_MANIFESTS, opts=with_provider)
        kueue = ConfigFile("kueue", file=KUEUE_MANIFESTS, opts=pulumi.ResourceOptions.merge(
            with_provider, pulumi.ResourceOptions(depends_on=[jobset])))
        ConfigGroup("queues", objs=queues(args.config), opts=pulumi.ResourceOptions.merge(
            with_provider, pulumi.ResourceOptions(depends_on=[kueue, tenant_group])))
        self.register_outputs({})
