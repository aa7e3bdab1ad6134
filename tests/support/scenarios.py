"""The retraining loop's scenarios for the pure reconcilers: a feed, a trainer, a server, and one step of each
(a load, a run, a sync of the server), shared by the reconcilers' tests and the status-schema checks."""

from typing import Any

from modelplane.api.common import Artifacts
from modelplane.api.dataset import DatasetSpec
from modelplane.api.model import ModelSpec
from modelplane.api.modelserver import ModelServerSpec
from modelplane.reconcile.artifacts import Observed, reconcile
from modelplane.reconcile.common import JobState, Outcome, RefState, RolloutState
from modelplane.reconcile.server import ServerObserved, reconcile_server
from tests.support.facts import DEV_CLUSTER, owner

T0, T1, T2 = "2026-11-24T10:00:00+00:00", "2026-11-24T11:00:00+00:00", "2026-11-24T12:00:00+00:00"
FEED = DatasetSpec.model_validate({"image": "loader:1", "params": {"source": "/feed"}})
FILES = [{"name": "train.csv", "size": 10, "md5": "a"}, {"name": "eval.csv", "size": 5, "md5": "e"}]
MORE = [{"name": "train.csv", "size": 20, "md5": "b"}, {"name": "eval.csv", "size": 5, "md5": "e"},
        {"name": "extra.csv", "size": 1, "md5": "x"}]
TRAINER = ModelSpec.model_validate({
    "image": "trainer:1", "dataset": {"name": "feed"}, "retrain": {},
    "evaluation": {"metrics": [{"name": "accuracy", "threshold": 0.5}]}})


def ready_of(outcome: Outcome) -> dict[str, Any]:
    return next(c for c in outcome.status["conditions"] if c["type"] == "Ready")


def reloading(spec: DatasetSpec, request: str) -> DatasetSpec:
    """The spec with `reload.requestID` set: the edit that loads again (an edit of what is loaded does too)."""
    return DatasetSpec.model_validate({**spec.model_dump(by_alias=True), "reload": {"requestID": request}})


def load(status: dict[str, Any], generation: int, manifest: list[dict[str, Any]], now: str) -> Outcome:
    """One load of the feed (generation N > 1 asks for it with reload.requestID "rN"): the sync that starts it,
    then the sync after its Job succeeded."""
    who, spec = owner("Dataset", "feed", generation), FEED if generation == 1 else reloading(FEED, f"r{generation}")
    started = reconcile(who, spec, status, DEV_CLUSTER, Observed(), now).status
    return reconcile(who, spec, started, DEV_CLUSTER, Observed(job=JobState(succeeded=True), manifest=manifest), now)


DATA_V1 = RefState(found=True, ready=True, url="gs://b/ml/datasets/feed/v1/", version=1, digest="d1")
DATA_V2 = RefState(found=True, ready=True, url="gs://b/ml/datasets/feed/v2/", version=2, digest="d2")


def run(status: dict[str, Any], data: RefState, metrics: dict[str, float], now: str,
        spec: ModelSpec = TRAINER) -> tuple[Outcome, Outcome]:
    """One run of the trainer: the sync that starts it, and the sync after its Job succeeded."""
    who = owner("Model", "clf")
    started = reconcile(who, spec, status, DEV_CLUSTER, Observed(refs={"dataset": data}), now)
    done = reconcile(who, spec, started.status, DEV_CLUSTER, Observed(
        job=JobState(succeeded=True), refs={"dataset": data}, metrics=metrics,
        artifacts=Artifacts(url=f"gs://b/ml/models/clf/v{started.status['run']['version']}/")), now)
    return started, done


SERVER = ModelServerSpec.model_validate({"model": {"name": "clf"}, "rolloutDeadlineSeconds": 600})


def model(version: int) -> RefState:
    return RefState(found=True, ready=True, url=f"gs://b/ml/models/clf/v{version}/", version=version)


def serve(status: dict[str, Any], champion: int, deployment: RolloutState) -> Outcome:
    return reconcile_server(owner("ModelServer", "srv"), SERVER, status, DEV_CLUSTER,
                            ServerObserved(model=model(champion), deployment=deployment), T0)


NIGHTLY = FEED.model_copy(update={"schedule": DatasetSpec.model_validate(
    {"image": "x", "schedule": {"cron": "0 3 * * *", "timeZone": "Europe/Berlin"}}).schedule})
