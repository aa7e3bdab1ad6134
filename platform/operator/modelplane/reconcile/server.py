"""Reconcile a ModelServer: serve the last Ready weights of its Model, and roll when they change.

The server mounts the Model's `status.artifacts.url`, which moves only when a new generation of the Model
succeeds: during a retrain the old weights keep serving, after it the Deployment rolls (a replica always up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelplane.api.modelserver import ModelServerSpec
from modelplane.builders.server import server_children, service_url
from modelplane.cluster import ClusterFacts
from modelplane.meta import Owner
from modelplane.reconcile.build import BuildObserved, begin
from modelplane.reconcile.common import Outcome, RefState, RolloutState, prefix_of_url


@dataclass(frozen=True)
class ServerObserved:
    model: RefState
    deployment: RolloutState | None = None
    build: BuildObserved = field(default_factory=BuildObserved)


def reconcile_server(owner: Owner, spec: ModelServerSpec, status: dict[str, Any], cluster: ClusterFacts,
                     observed: ServerObserved, now: str) -> Outcome:
    outcome, built, early = begin(owner, spec, status, cluster, observed.build, now)
    if early:
        return early
    model = observed.model
    if not model.found:
        return outcome(False, "ModelNotFound", f"Model {spec.model.name!r} does not exist in namespace "
                                               f"{owner.namespace}; serving starts when it is created and Ready")
    if not model.url:
        return outcome(False, "ModelNotReady", f"waiting for Model {spec.model.name!r} to be Ready")

    image = built or cluster.server_image
    children = server_children(owner, spec, image, default_image=not (spec.image or spec.build),
                               model_prefix=prefix_of_url(model.url), model_url=model.url, cluster=cluster)
    # An HPA left behind would keep scaling the Deployment after autoscaling was removed from the spec.
    absent = [] if spec.autoscaling else [("HorizontalPodAutoscaler", owner.name)]
    deployment = observed.deployment or RolloutState()
    url = service_url(owner)
    fields = {"image": image, "replicas": deployment.replicas, "readyReplicas": deployment.ready, "url": url}
    if deployment.available:
        return outcome(True, "Serving", f"{deployment.ready} replica(s) serving {model.url} at {url}", children,
                       absent, **fields)
    if spec.replicas == 0 and spec.autoscaling is None:
        return outcome(False, "ScaledToZero", "spec.replicas is 0", children, absent, **fields)
    return outcome(False, "Deploying", f"waiting for a replica to pass its readiness probe ({image})", children,
                   absent, **fields)
