"""A ModelServer's monitoring, as the pure reconciler decides it: when runs start, what each reads and writes, and
how its report becomes status (the monitor's program is tests/monitor's; the loop through the operator is
tests/emulator/operator/test_loop.py's)."""

import dataclasses
from typing import Any

from modelplane.api.model import Retrain
from modelplane.api.modelserver import ModelServerSpec
from modelplane.layout import monitor_run_prefix, payloads_prefix, tenant_prefix
from modelplane.monitor.report import DriftReport
from modelplane.reconcile.artifacts import DriftSignal, Observed, reconcile
from modelplane.reconcile.common import JobState, RefState
from modelplane.reconcile.monitor import MonitorObserved, reconcile_monitoring
from modelplane.reconcile.server import ServerObserved, reconcile_server
from tests.support.facts import DEV_CLUSTER, NAMESPACE, owner
from tests.support.scenarios import DATA_V1, T0, T2, TRAINER, run

SERVER = owner("ModelServer", "clf")
TRAINED_ON = MonitorObserved(trained_on=("churn", 2))
SPEC = ModelServerSpec.model_validate({"model": {"name": "clf"}, "logging": {},
                                      "monitoring": {"schedule": {"cron": "0 * * * *"}, "windowHours": 6}})
REPORT = DriftReport.model_validate({
    "window": {"start": "2026-12-03T04:00:00Z", "end": "2026-12-03T10:00:00Z"}, "modelVersion": 3, "samples": 800,
    "referenceSamples": 240, "reference": "Dataset churn v2", "enough": True, "drift": True, "correction": "holm",
    "significance": 0.05, "message": "drift in 1 of 4 features: support_calls",
    "features": [{"name": "support_calls", "kind": "numeric", "test": "ks", "statistic": 0.41, "pValue": 1e-9,
                  "adjustedPValue": 4e-9, "psi": 0.9, "drift": True}],
    "outliers": {"method": "isolationForest", "count": 8, "rate": 0.01, "threshold": 0.05, "flagged": False}})


def job_of(children: list[dict[str, Any]]) -> dict[str, Any]:
    (job,) = [c for c in children if c["kind"] == "Job"]
    return job


def test_off_without_monitoring_and_refused_without_the_runtime_image() -> None:
    plain = SPEC.model_copy(update={"monitoring": None})
    assert reconcile_monitoring(SERVER, plain, {}, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T10:00:00Z").status is None
    bare = dataclasses.replace(DEV_CLUSTER, runtime_image="")
    refused = reconcile_monitoring(SERVER, SPEC, {}, 3, bare, TRAINED_ON, "2026-12-03T10:00:00Z")
    assert refused.children == [] and "images.runtime" in refused.status["message"]  # type: ignore[index]


def test_the_first_run_waits_for_the_schedule_then_reads_the_window_and_the_training_data() -> None:
    first = reconcile_monitoring(SERVER, SPEC, {}, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T09:20:00Z")
    assert first.children == [] and first.requeue_after == 40 * 60
    assert first.status == {"since": "2026-12-03T09:20:00Z", "message": "next run at 2026-12-03T10:00:00Z"}

    due = reconcile_monitoring(SERVER, SPEC, first.status, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T10:00:05Z")
    assert due.status is not None and due.status["run"] == {
        "number": 1, "started": "2026-12-03T10:00:05Z", "windowStart": "2026-12-03T04:00:05Z",
        "windowEnd": "2026-12-03T10:00:05Z", "version": 3,
        "reference": "Dataset churn v2 (Model clf v3's training data)"}
    job = job_of(due.children)
    assert job["metadata"]["name"] == "modelserver-clf-monitor-1"
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == DEV_CLUSTER.runtime_image
    assert container["args"] == ["-m", "modelplane.monitor"] and "command" not in container
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELPLANE_WINDOW_START"] == "2026-12-03T04:00:05Z" and env["MODELPLANE_MODEL_VERSION"] == "3"
    mounts = {m["mountPath"]: m["readOnly"] for m in container["volumeMounts"]}
    assert mounts == {"/content/artifacts": False, "/content/payloads": True, "/content/data": True,
                      "/content/params.json": True}
    dirs = {v["name"]: v["csi"]["volumeAttributes"]["mountOptions"] for v in pod["volumes"] if "csi" in v}
    assert "only-dir=ml/modelservers/clf/payloads," in dirs["payloads"] + ","
    assert "only-dir=ml/datasets/churn/v2," in dirs["data"]
    assert "only-dir=ml/modelservers/clf/monitor/run-1," in dirs["artifacts"]
    (params,) = [c for c in due.children if c["kind"] == "ConfigMap"]
    assert '"significance": 0.05' in params["data"]["params.json"]


def test_a_pinned_reference_wins_and_a_model_without_training_data_needs_one() -> None:
    running = {"since": "2026-12-03T08:00:00Z"}
    untrained = reconcile_monitoring(SERVER, SPEC, running, 3, DEV_CLUSTER, MonitorObserved(), "2026-12-03T10:00:00Z")
    assert untrained.children == [] and "spec.monitoring.reference" in untrained.status["message"]  # type: ignore
    pinned = ModelServerSpec.model_validate({"model": {"name": "clf"}, "logging": {}, "monitoring": {
        "schedule": {"cron": "0 * * * *"}, "reference": {"name": "golden", "version": 7}}})
    started = reconcile_monitoring(SERVER, pinned, running, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T10:00:00Z")
    assert started.status is not None and started.status["run"]["reference"] == "Dataset golden v7"


def test_a_report_becomes_status_and_a_drift_is_kept_as_the_last_drift() -> None:
    run = {"number": 1, "started": "2026-12-03T10:00:05Z", "windowStart": "2026-12-03T04:00:05Z",
           "windowEnd": "2026-12-03T10:00:05Z", "version": 3, "reference": "Dataset churn v2"}
    state = {"since": "2026-12-03T09:20:00Z", "run": run, "message": "monitor run 1 started"}
    running = reconcile_monitoring(SERVER, SPEC, state, 3, DEV_CLUSTER, MonitorObserved(job=JobState(active=1)),
                                   "2026-12-03T10:01:00Z")
    assert running.children == [] and running.status is not None
    assert running.status["message"] == "monitor run 1 is running"
    done = reconcile_monitoring(SERVER, SPEC, state, 3, DEV_CLUSTER,
                                MonitorObserved(job=JobState(succeeded=True), report=REPORT), "2026-12-03T10:02:00Z")
    assert done.status is not None
    report = done.status["lastReport"]
    assert report == done.status["lastDrift"]
    assert (report["run"], report["drift"], report["samples"], report["outlierRate"]) == (1, True, 800, 0.01)
    assert report["features"] == [{"name": "support_calls", "statistic": 0.41, "pValue": 4e-9, "psi": 0.9,
                                   "drift": True}]
    assert report["url"] == f"gs://{DEV_CLUSTER.bucket}/{monitor_run_prefix(SERVER, 1)}report.json"
    assert done.status["message"] == REPORT.message and done.requeue_after == 58 * 60

    # The next run starts at the next hour: a clean window replaces the last report, the last drift stays.
    clean = REPORT.model_copy(update={"drift": False, "message": "no drift in 4 features"})
    second = reconcile_monitoring(SERVER, SPEC, done.status, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T11:00:00Z")
    assert second.status is not None and second.status["run"]["number"] == 2
    after = reconcile_monitoring(SERVER, SPEC, second.status, 3, DEV_CLUSTER,
                                 MonitorObserved(job=JobState(succeeded=True), report=clean), "2026-12-03T11:03:00Z")
    assert after.status is not None
    assert after.status["lastReport"]["run"] == 2 and after.status["lastDrift"]["run"] == 1


def test_a_failed_run_or_an_unreadable_report_says_why_and_the_next_run_comes() -> None:
    run = {"number": 4, "started": "2026-12-03T10:00:00Z", "windowStart": "x", "windowEnd": "y", "version": 3,
           "reference": "r"}
    state = {"since": "2026-12-03T00:00:00Z", "run": run}
    failed = reconcile_monitoring(SERVER, SPEC, state, 3, DEV_CLUSTER,
                                  MonitorObserved(job=JobState(failed=True, message="no records: bad gzip")),
                                  "2026-12-03T10:05:00Z")
    assert failed.status is not None and failed.status["failedRun"] == 4
    assert failed.status["message"] == "monitor run 4 failed: no records: bad gzip"
    waiting = reconcile_monitoring(SERVER, SPEC, failed.status, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T10:30:00Z")
    assert waiting.children == [] and waiting.status is not None
    assert waiting.status["message"] == failed.status["message"]  # the failure stays visible until the next run
    unreadable = reconcile_monitoring(SERVER, SPEC, state, 3, DEV_CLUSTER,
                                      MonitorObserved(job=JobState(succeeded=True), report_problem="not JSON"),
                                      "2026-12-03T10:05:00Z")
    assert unreadable.status is not None and "not JSON" in unreadable.status["message"]
    nxt = reconcile_monitoring(SERVER, SPEC, failed.status, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T11:00:00Z")
    assert nxt.status is not None and nxt.status["run"]["number"] == 5 and "failedRun" not in nxt.status


def test_nothing_served_yet_is_no_run() -> None:
    waiting = reconcile_monitoring(SERVER, SPEC, {"since": "2026-12-03T08:00:00Z"}, None, DEV_CLUSTER, TRAINED_ON,
                                   "2026-12-03T10:00:00Z")
    assert waiting.children == [] and waiting.status is not None and "nothing is served" in waiting.status["message"]


def test_what_the_monitor_reads_and_writes_lies_in_the_tenant_prefix() -> None:
    """The tenant's identity may use `<tenant>/` only (infra/iam): the proxy's writes and the run's output too."""
    for prefix in (payloads_prefix(SERVER), monitor_run_prefix(SERVER, 1)):
        assert prefix.startswith(tenant_prefix(NAMESPACE)) and prefix.endswith("/")


def test_the_server_carries_monitoring_and_drops_it_when_it_is_turned_off() -> None:
    model = RefState(found=True, ready=True, url=f"gs://{DEV_CLUSTER.bucket}/ml/models/clf/v3/", version=3)
    served = reconcile_server(SERVER, SPEC, {}, DEV_CLUSTER, ServerObserved(model=model, monitor=TRAINED_ON),
                              "2026-12-03T09:20:00Z")
    assert served.status["monitoring"]["message"] == "next run at 2026-12-03T10:00:00Z"
    assert served.requeue_after == 40 * 60
    plain = SPEC.model_copy(update={"monitoring": None, "logging": None})
    off = reconcile_server(SERVER, plain, served.status, DEV_CLUSTER, ServerObserved(model=model),
                           "2026-12-03T09:21:00Z")
    assert off.status["monitoring"] is None  # a merge patch deletes the field
    gone = reconcile_server(SERVER, plain, {k: v for k, v in off.status.items() if k != "monitoring"}, DEV_CLUSTER,
                            ServerObserved(model=model), "2026-12-03T09:22:00Z")
    assert "monitoring" not in gone.status


def test_drift_a_server_reported_after_the_last_run_started_retrains_the_model_once() -> None:
    trainer = TRAINER.model_copy(update={"retrain": Retrain.model_validate({"cooldownSeconds": 3600})})
    _, trained = run({}, DATA_V1, {"accuracy": 0.8}, T0, trainer)
    who = owner("Model", "clf")
    old = DriftSignal(server="clf", run=1, time="2026-11-24T09:00:00Z")  # before the run: that run answered it
    assert reconcile(who, trainer, trained.status, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}, drift=old),
                     T2).children == []
    new = DriftSignal(server="clf", run=2, time="2026-11-24T10:30:00Z")
    cooling = reconcile(who, trainer, trained.status, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}, drift=new),
                        "2026-11-24T10:45:00Z")
    assert cooling.children == [] and cooling.requeue_after == 15 * 60  # retrain.cooldownSeconds holds
    started = reconcile(who, trainer, trained.status, DEV_CLUSTER, Observed(refs={"dataset": DATA_V1}, drift=new), T2)
    assert started.status["run"]["trigger"] == "drift reported by ModelServer clf (monitor run 2)"
    assert started.status["run"]["parent"] == 1 and started.status["run"]["datasetVersion"] == 1
    assert [c["kind"] for c in started.children] == ["ConfigMap", "Job"]


def test_a_new_request_id_runs_the_monitor_now_once() -> None:
    assert SPEC.monitoring is not None
    asked = SPEC.model_copy(update={"monitoring": SPEC.monitoring.model_copy(update={"request_id": "incident-7"})})
    state = {"since": "2026-12-03T09:20:00Z"}
    now = reconcile_monitoring(SERVER, asked, state, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T09:21:00Z")
    assert now.status is not None and now.status["run"]["requestID"] == "incident-7" and job_of(now.children)
    done = reconcile_monitoring(SERVER, asked, now.status, 3, DEV_CLUSTER,
                                MonitorObserved(job=JobState(succeeded=True), report=REPORT), "2026-12-03T09:22:00Z")
    again = reconcile_monitoring(SERVER, asked, done.status or {}, 3, DEV_CLUSTER, TRAINED_ON, "2026-12-03T09:23:00Z")
    assert again.children == [] and again.requeue_after == 37 * 60  # answered: the schedule rules again
