"""What every sync works with, built once per operator process (main(), or a test's harness) and typed.

Every function of the operator takes the Context, so a misspelt client or a missing fact is a type error, not an
AttributeError at the first event.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import google.auth
from google.cloud import storage

from modelplane.cluster import ClusterFacts
from modelplane.operator import login
from modelplane.operator.dependents import Dependents
from modelplane.operator.kube import Kube
from modelplane.operator.metrics import Metrics
from modelplane.operator.queue import WorkQueue
from modelplane.operator.recorder import Recorder
from modelplane.storage import ArtifactStore, UploadSigner

Key = tuple[str, str, str]  # (kind, namespace, name) of a custom resource
ChildKey = tuple[str, str]  # (kind, name) of a child, in its owner's namespace


@dataclass
class Context:
    kube: Kube
    cluster: ClusterFacts
    store: ArtifactStore
    signer: UploadSigner
    metrics: Metrics = field(default_factory=Metrics)
    # The tenant namespaces the operator serves (its RBAC is there: access.py); none: every namespace, for a local run
    # with one's own credentials.
    namespaces: tuple[str, ...] = ()
    queue: WorkQueue[Key] = field(init=False)
    recorder: Recorder = field(init=False)  # posts the syncs' Events beside them
    known: set[Key] = field(default_factory=set)  # every object of our kinds the watches have shown and not deleted
    resting: set[Key] = field(default_factory=set)  # of those, the ones at rest when last shown (sync.at_rest)
    dependents: Dependents = field(default_factory=Dependents)  # which objects wait for which
    # Per object, what the operator last applied to each child -> its digest, or sync.ABSENT once deleted: an
    # unchanged child is not sent again. Cleared at each resync, so drift is corrected within RESYNC_SECONDS, and for
    # an object at rest (it has no children to keep).
    applied: dict[Key, dict[ChildKey, bytes]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # the workers, then the resync
    watching: list[asyncio.Task[None]] = field(default_factory=list)  # the informers
    posting: list[asyncio.Task[None]] = field(default_factory=list)  # the recorder's posters
    # The operator's Jobs as their watch last delivered them, (namespace, name) -> body: a sync reads a Job here
    # rather than GET it (as controller-runtime's informer cache); one not seen yet is read from the API server.
    jobs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.queue = WorkQueue[Key](metrics=self.metrics)
        self.recorder = Recorder(self.kube, self.metrics)

    @classmethod
    def from_environment(cls, metrics: Metrics) -> Context:
        """In the cluster: the pod's service account and Workload Identity, the facts the stack wrote
        (MODELPLANE_* variables); outside it, the kubeconfig and application-default credentials."""
        kube = Kube(login.load())
        cluster = ClusterFacts.from_env(os.environ)
        client = storage.Client(project=cluster.project)
        google_credentials, _project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        namespaces = tuple(ns.strip() for ns in os.environ.get("MODELPLANE_NAMESPACES", "").split(",") if ns.strip())
        return cls(kube=kube, cluster=cluster, store=ArtifactStore(client, cluster.bucket),
                   signer=UploadSigner(client.bucket(cluster.bucket), google_credentials), metrics=metrics,
                   namespaces=namespaces)
