"""Reconcile a ModelServer's monitoring: on its schedule, a Job compares a window of the recorded traffic with a
reference, and its report becomes `status.monitoring` (pure; reconcile/server.py calls it).

Why a Job per run, started by the operator (not a CronJob): the operator must read each run's report into status
anyway, and it chooses each run's inputs: the window, the version being served and the reference, which by default
is the Dataset version that version was trained on (its ModelVersion's lineage) and changes when the server rolls.
Each run writes `<server root>monitor/run-<n>/report.json`; a run never reads another run's output.

The run's container contract is the workloads' own (builders/workload.py): the traffic at /content/payloads and the
reference at /content/data, read-only; the report into /content/artifacts; the detection settings in
/content/params.json; the window and the version in the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from modelplane.api.common import TIME_FORMAT, Workload
from modelplane.api.dataset import DATASET
from modelplane.api.modelserver import ModelServerSpec, Monitoring
from modelplane.builders.job import run_children
from modelplane.builders.workload import ARTIFACTS_PATH, CONTENT, DATA_PATH, Mount
from modelplane.cluster import ClusterFacts
from modelplane.layout import monitor_run_prefix, payloads_prefix, version_prefix
from modelplane.meta import Owner, child_name
from modelplane.monitor.report import REPORT, DriftReport
from modelplane.reconcile.common import JobState
from modelplane.reconcile.schedule import next_fire, schedule_problem

PAYLOADS_PATH = f"{CONTENT}/payloads"
MONITOR_ARGS = ["-m", "modelplane.monitor"]  # to the runtime image's entrypoint, `python`


@dataclass(frozen=True)
class MonitorObserved:
    job: JobState | None = None  # the current run's Job
    report: DriftReport | None = None  # its report, once the Job succeeded
    report_problem: str = ""  # why report.json could not be read, when it could not
    trained_on: tuple[str, int] | None = None  # (Dataset, version) in the served version's lineage
    pods_refused: str = ""


@dataclass(frozen=True)
class MonitorOutcome:
    children: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None  # status.monitoring (None: monitoring is off)
    requeue_after: float | None = None  # when the next run is due


def run_job_name(owner: Owner, number: int) -> str:
    return child_name(owner, "monitor", number)


def _reference(monitoring: Monitoring, observed: MonitorObserved) -> tuple[str, int] | None:
    if monitoring.reference:
        return monitoring.reference.name, monitoring.reference.version
    return observed.trained_on


def _time(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def _summary(number: int, report: DriftReport, url: str, now: str) -> dict[str, Any]:
    """The report as status carries it: the verdict and, per feature, what a dashboard plots."""
    return {"run": number, "time": now, "drift": report.drift, "samples": report.samples,
            **({"outlierRate": report.outliers.rate} if report.outliers else {}), "message": report.message[:1024],
            "features": [{"name": f.name, "statistic": f.statistic, "pValue": f.adjusted_p_value, "psi": f.psi,
                          "drift": f.drift} for f in report.features[:64]],
            "url": url}


def reconcile_monitoring(owner: Owner, spec: ModelServerSpec, status: dict[str, Any], version: int | None,
                         cluster: ClusterFacts, observed: MonitorObserved, now: str) -> MonitorOutcome:
    """`status` is status.monitoring as it was; `version` the Model version being served (None: none yet)."""
    monitoring = spec.monitoring
    if monitoring is None:
        return MonitorOutcome()
    state = dict(status)
    state.setdefault("since", now)

    def say(message: str, requeue: float | None = None) -> MonitorOutcome:
        return MonitorOutcome(status={**state, "message": message}, requeue_after=requeue)

    if not cluster.runtime_image:
        return say("the stack deploys no runtime image (the monitor's program): set images.runtime or let the "
                   "stack build it")
    problem = schedule_problem(monitoring.schedule, "spec.monitoring.schedule")
    if problem:
        return say(problem)
    run = state.get("run")
    report = state.get("lastReport")
    if run and (not report or report["run"] != run["number"]) and state.get("failedRun") != run["number"]:
        job = observed.job
        if job and job.failed:
            state["failedRun"] = run["number"]
            return say(f"monitor run {run['number']} failed: {job.message or 'see its Job'}",
                       _until_due(monitoring, run["started"], now))
        if job and job.succeeded:
            if observed.report is None:
                state["failedRun"] = run["number"]
                return say(f"monitor run {run['number']} wrote no readable {REPORT}: {observed.report_problem}",
                           _until_due(monitoring, run["started"], now))
            url = f"gs://{cluster.bucket}/{monitor_run_prefix(owner, run['number'])}{REPORT}"
            summary = _summary(run["number"], observed.report, url, now)
            state["lastReport"] = summary
            if summary["drift"]:
                state["lastDrift"] = summary
            return say(summary["message"], _until_due(monitoring, run["started"], now))
        if observed.pods_refused:
            return say(f"monitor run {run['number']}: {observed.pods_refused}")
        return say(f"monitor run {run['number']} is running")
    last_start = run["started"] if run else state["since"]
    wait = _until_due(monitoring, last_start, now)
    requested = monitoring.request_id and monitoring.request_id != (run or {}).get("requestID")
    if wait and not requested:
        due = _time(datetime.fromisoformat(now) + timedelta(seconds=wait))
        return say(state["message"] if state.get("failedRun") else f"next run at {due}", wait)
    if version is None:
        return say("nothing is served yet: monitoring starts with the first version", None)
    reference = _reference(monitoring, observed)
    if reference is None:
        return say(f"version {version} of Model {spec.model.name} was not trained on a Dataset: set "
                   "spec.monitoring.reference to the Dataset version to compare with")
    number = (run["number"] if run else 0) + 1
    end = datetime.fromisoformat(now)
    dataset, data_version = reference
    described = f"Dataset {dataset} v{data_version}" + ("" if monitoring.reference else
                                                         f" (Model {spec.model.name} v{version}'s training data)")
    new_run = {"number": number, "started": now, "windowStart": _time(end - timedelta(hours=monitoring.window_hours)),
               "windowEnd": _time(end), "version": version, "reference": described,
               **({"requestID": monitoring.request_id} if monitoring.request_id else {})}
    program = Workload(image=cluster.runtime_image,
                       params=monitoring.detection.model_dump(by_alias=True, mode="json"),
                       env={"MODELPLANE_WINDOW_START": new_run["windowStart"],
                            "MODELPLANE_WINDOW_END": new_run["windowEnd"], "MODELPLANE_MODEL_VERSION": str(version),
                            "MODELPLANE_REFERENCE": described},
                       resources=monitoring.resources)
    data = Owner(DATASET.kind, dataset, owner.namespace, "", 0)
    mounts = [Mount("artifacts", monitor_run_prefix(owner, number), ARTIFACTS_PATH, read_only=False),
              Mount("payloads", payloads_prefix(owner), PAYLOADS_PATH, read_only=True),
              Mount("data", version_prefix(data, data_version), DATA_PATH, read_only=True)]
    children = run_children(owner, program, cluster.runtime_image, cluster, mounts, run_job_name(owner, number),
                            args=MONITOR_ARGS)
    state = {**state, "run": new_run, "message": f"monitor run {number} started"}
    state.pop("failedRun", None)
    return MonitorOutcome(children=children, status=state)


def _until_due(monitoring: Monitoring, last_start: str, now: str) -> float | None:
    """Seconds until the schedule's next run after `last_start` (None: it is due now)."""
    due = next_fire(monitoring.schedule, last_start)
    assert due is not None
    wait = (due - datetime.fromisoformat(now)).total_seconds()
    return max(1.0, wait) if wait > 0 else None
