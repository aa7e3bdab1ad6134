"""Every reason the operator writes into a Ready (or Built) condition: one definition, read by the reconcilers that
write them, the handlers that act on them and the CLI that maps them to exit codes.

A StrEnum, so a reason is its string on the wire (`condition["reason"] == Reason.LOADED` holds) and `grep` finds each
one defined here once. The references a spec makes (`baseModel`, `dataset`, `model`) add `<Field>NotFound` and
`<Field>NotReady`, listed too.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # A run (a Dataset's load, a Model's training or import run).
    LOADING = "Loading"
    TRAINING = "Training"
    LOADED = "Loaded"
    UNCHANGED = "Unchanged"  # a load found the latest version's data: no new version
    IMPORTED = "Imported"
    TRAINED = "Trained"
    JOB_FAILED = "JobFailed"
    QUEUED = "Queued"  # Kueue holds the run's Job until its queue has quota (the message says why, and where)
    # The image build before a workload.
    BUILDING = "Building"
    BUILT = "Built"
    BUILD_FAILED = "BuildFailed"
    AWAITING_UPLOAD = "AwaitingUpload"
    # Refusals: the spec, the cluster, the API server.
    INVALID_SPEC = "InvalidSpec"  # the spec cannot be built (the CRD admits it, the operator cannot make children)
    GPU_NOT_OFFERED = "GPUNotOffered"
    QUOTA_EXCEEDED = "QuotaExceeded"  # pods refused by the namespace's ResourceQuota; clears when quota frees up
    PODS_REFUSED = "PodsRefused"  # pods refused otherwise (Pod Security admission, a webhook, a LimitRange)
    REFUSED = "Refused"  # the API server refused to create or update a child (RBAC, admission, validation)
    # What a spec references.
    BASE_MODEL_NOT_FOUND = "BaseModelNotFound"
    BASE_MODEL_NOT_READY = "BaseModelNotReady"
    DATASET_NOT_FOUND = "DatasetNotFound"
    DATASET_NOT_READY = "DatasetNotReady"
    MODEL_NOT_FOUND = "ModelNotFound"
    MODEL_NOT_READY = "ModelNotReady"
    MODEL_VERSION_NOT_FOUND = "ModelVersionNotFound"
    # Notebooks.
    SUSPENDED = "Suspended"
    IDLE_SUSPENDED = "IdleSuspended"  # suspended by the operator: idle for spec.idle.timeoutMinutes
    STARTING = "Starting"
    RUNNING = "Running"
    # Serving.
    SERVING = "Serving"
    DEPLOYING = "Deploying"
    SCALED_TO_ZERO = "ScaledToZero"
    ROLLED_BACK = "RolledBack"


# A run that ended: it never runs again into the same version.
TERMINAL = frozenset({Reason.LOADED, Reason.UNCHANGED, Reason.IMPORTED, Reason.TRAINED, Reason.JOB_FAILED,
                      Reason.BUILD_FAILED})
# Failures a user must act on (the CLI's exit codes: errors.Exit).
FAILED = frozenset({Reason.JOB_FAILED, Reason.BUILD_FAILED})
REFUSALS = frozenset({Reason.INVALID_SPEC, Reason.GPU_NOT_OFFERED, Reason.QUOTA_EXCEEDED})


def missing(field: str, found: bool) -> Reason:
    """`<Field>NotFound` or `<Field>NotReady` for a spec field that references another object."""
    return Reason(f"{field[0].upper()}{field[1:]}{'NotReady' if found else 'NotFound'}")


class EventReason(StrEnum):
    """The reasons of the Kubernetes Events the operator posts when a sync changes something a person or an alert
    cares about (`kubectl describe` and `kubectl get events` show them); each also moves a metric (metrics.py)."""

    READY = "Ready"
    VERSION_CREATED = "VersionCreated"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    DRIFT_DETECTED = "DriftDetected"
    DRIFT_RETRAIN = "RetrainingOnDrift"
    IDLE_WARNING = "IdleWarning"  # a notebook will be suspended for idleness unless it is used
    IDLE_SUSPENDED = "IdleSuspended"


class Phase(StrEnum):
    """Where a server's or notebook's pods are on their way to ready (`status.startup.phase`)."""

    SCHEDULING = "Scheduling"  # waiting for a node (a GPU node scaling up, or none fits)
    PULLING_IMAGE = "PullingImage"  # the kubelet pulls the image and mounts the bucket
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CRASH_LOOPING = "CrashLooping"
    LOADING = "Loading"  # running, not ready yet: loading the weights
    READY = "Ready"
