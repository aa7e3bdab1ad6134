"""Reconcile a ModelServer: serve its Model's champion (or a pinned version), roll to each new one, roll back a
rollout that fails.

The server mounts the weights of `status.target`. It moves when the Model's champion moves (a promotion, a pin,
a rollback by the user): the Deployment's template changes and it rolls with a replica always serving. When the
Deployment controller reports that the rollout passed its deadline (`ProgressDeadlineExceeded`, with
`progressDeadlineSeconds` = `spec.rolloutDeadlineSeconds`), the target goes back to the last version that rolled
out fully, and the failed version is not tried again. With `monitoring`, the served version's traffic is watched
for drift on a schedule (reconcile/monitor.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from modelplane.api.modelserver import ModelServerSpec
from modelplane.api.reasons import Reason
from modelplane.builders.server import server_children, service_url
from modelplane.cluster import ClusterFacts
from modelplane.layout import payloads_prefix
from modelplane.meta import Owner
from modelplane.reconcile.build import BuildObserved, begin
from modelplane.reconcile.common import (
    Outcome,
    PodsStartup,
    RefState,
    RolloutState,
    prefix_of_url,
    soonest,
    startup_fields,
    startup_poll,
)
from modelplane.reconcile.monitor import MonitorObserved, reconcile_monitoring


@dataclass(frozen=True)
class ServerObserved:
    model: RefState
    deployment: RolloutState | None = None
    build: BuildObserved = field(default_factory=BuildObserved)
    pinned: RefState | None = None  # the ModelVersion of spec.model.version, when pinned
    monitor: MonitorObserved = field(default_factory=MonitorObserved)
    startup: PodsStartup | None = None  # while a replica is not ready: where the pods are


def _wanted(owner: Owner, spec: ModelServerSpec, observed: ServerObserved) -> tuple[dict[str, Any] | None, str, str]:
    """The version to serve ({version, url}), or why there is none yet (reason, message)."""
    model = observed.model
    if spec.model.version:
        pinned = observed.pinned or RefState(found=False)
        if not pinned.found or not pinned.url:
            return None, Reason.MODEL_VERSION_NOT_FOUND, (
                f"ModelVersion {spec.model.name}-v{spec.model.version} does not exist in namespace {owner.namespace}")
        return {"version": spec.model.version, "url": pinned.url}, "", ""
    if not model.found:
        return None, Reason.MODEL_NOT_FOUND, (
            f"Model {spec.model.name!r} does not exist in namespace {owner.namespace}; serving starts when it is "
            "created and Ready")
    if not model.url:
        return None, Reason.MODEL_NOT_READY, f"waiting for Model {spec.model.name!r} to be Ready"
    return {"version": model.version, "url": model.url}, "", ""


def reconcile_server(owner: Owner, spec: ModelServerSpec, status: dict[str, Any], cluster: ClusterFacts,
                     observed: ServerObserved, now: str) -> Outcome:
    served = _serve(owner, spec, status, cluster, observed, now)
    target = served.status.get("target") or {}
    monitored = reconcile_monitoring(owner, spec, status.get("monitoring") or {}, target.get("version"), cluster,
                                     observed.monitor, now)
    extra = {**startup_fields(status, observed.startup),
             **({"monitoring": monitored.status} if monitored.status is not None or "monitoring" in status else {})}
    return replace(served, children=[*served.children, *monitored.children], status={**served.status, **extra},
                   requeue_after=soonest(monitored.requeue_after, startup_poll(observed.startup)))


def _serve(owner: Owner, spec: ModelServerSpec, status: dict[str, Any], cluster: ClusterFacts,
           observed: ServerObserved, now: str) -> Outcome:
    outcome, built, early = begin(owner, spec, status, cluster, observed.build, now)
    if early:
        return early
    if spec.logging and not cluster.runtime_image:
        return outcome(False, Reason.INVALID_SPEC, "spec.logging needs the capture proxy, in the stack's runtime "
                                                   "image, which this cluster lacks: set images.runtime in the stack "
                                                   "(or let it build the image), or remove spec.logging")
    wanted, reason, message = _wanted(owner, spec, observed)
    target, last_good = status.get("target"), status.get("lastGood")
    rejected = list(status.get("rejected") or [])
    if wanted is None and target is None:
        return outcome(False, reason, message)
    deployment = observed.deployment or RolloutState()
    rolled_back = ""
    if deployment.complete and target:
        # The Deployment controller's word is about the template it last saw: the target of an earlier sync.
        last_good = target
    if deployment.stuck and target and last_good and target["url"] != last_good["url"]:
        rolled_back = (f"version {target['version']} did not become ready within {spec.rollout_deadline_seconds}s; "
                       f"rolled back to version {last_good['version']}")
        rejected = [*rejected, target["version"]][-20:]
        target = last_good
    elif wanted and (target is None or wanted["url"] != target["url"]) and wanted["version"] not in rejected:
        target = wanted  # a new champion (or pin): roll to it
    assert target is not None

    image = built or cluster.server_image
    children = server_children(owner, spec, image, default_image=not (spec.image or spec.build),
                               model_prefix=prefix_of_url(target["url"]), model_url=target["url"], cluster=cluster,
                               version=target.get("version"), payloads=payloads_prefix(owner))
    # An HPA left behind would keep scaling the Deployment after autoscaling was removed from the spec.
    absent = [] if spec.autoscaling else [("HorizontalPodAutoscaler", owner.name)]
    url = service_url(owner)
    fields = {"image": image, "replicas": deployment.replicas, "readyReplicas": deployment.ready, "url": url,
              "target": target, **({"servedVersion": target["version"]} if target.get("version") else {}),
              **({"lastGood": last_good} if last_good else {}), **({"rejected": rejected} if rejected else {})}
    serving = f"version {target.get('version')} ({target['url']})"
    if not rolled_back and wanted and wanted["version"] in rejected and wanted["url"] != target["url"]:
        rolled_back = f"version {wanted['version']} failed its rollout and is not tried again; serving {serving}"
    if rolled_back:
        return outcome(deployment.available > 0, Reason.ROLLED_BACK, rolled_back, children, absent, **fields)
    if deployment.available:
        return outcome(True, Reason.SERVING, f"{deployment.ready} replica(s) serving {serving} at {url}", children,
                       absent, **fields)
    if spec.replicas == 0 and spec.autoscaling is None:
        return outcome(False, Reason.SCALED_TO_ZERO, "spec.replicas is 0", children, absent, **fields)
    waiting = f"{observed.startup.phase}: {observed.startup.message}" if observed.startup else \
        f"waiting for its readiness probe ({image})"
    return outcome(False, Reason.DEPLOYING, f"a replica of {serving}: {waiting}", children, absent, **fields)
