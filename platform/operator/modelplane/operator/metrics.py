"""The operator's Prometheus metrics, named as controller-runtime names its own so stock dashboards read them.

Every Go operator built on controller-runtime (Kueue, KServe, Kubeflow Trainer) exports
`controller_runtime_reconcile_{total,errors_total,time_seconds}{controller}` and client-go's
`workqueue_{depth,adds_total,queue_duration_seconds,work_duration_seconds,retries_total}{name}` (the names and
labels of controller-runtime's pkg/internal/controller/metrics and pkg/metrics/workqueue.go); this operator
keeps them, with the lower-case kind as `controller`. The platform's own series carry the `modelplane_` prefix and
bounded labels (kind, a reason, and the namespace/name of servers, which a tenant creates by hand and few of).

One registry per operator (not prometheus-client's global one), served on OPERATOR_METRICS_PORT and scraped by
GKE's managed Prometheus through the PodMonitoring the stack deploys.
"""

from __future__ import annotations

import contextlib
import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from modelplane.api.reasons import EventReason
from modelplane.reconcile.notices import Notice

# controller-runtime's reconcile buckets: 5 ms to 60 s (pkg/internal/controller/metrics/metrics.go).
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
                     0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40,
                     50, 60)
# client-go's workqueue buckets: 10^-8 s to 10^1 s, by powers of ten (ExponentialBuckets(10e-9, 10, 10)).
QUEUE_BUCKETS = tuple(10e-9 * 10**i for i in range(10))
# Time to Ready spans seconds (a server on a warm node) to hours (a fine-tune on a GPU that scales up from zero).
READY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
QUEUE_NAME = "modelplane"
RESULTS = ("success", "error", "requeue_after")


@dataclasses.dataclass(frozen=True)
class QueueSeries:
    """A work queue's series with its name bound once: `labels()` looks the child up, under a lock, at every call,
    and the queue reports at every add, take and end of a sync (bound once, the metrics cost half the CPU they did:
    bench/operator_profile.py)."""

    adds: Counter
    depth: Gauge
    waited: Histogram
    worked: Histogram
    retries: Counter


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconcile_total = Counter("controller_runtime_reconcile_total", "Reconciliations per controller "
                                       "and result.", ["controller", "result"], registry=r)
        self.reconcile_errors = Counter("controller_runtime_reconcile_errors_total", "Reconciliations that "
                                        "failed (and are retried with backoff).", ["controller"], registry=r)
        self.reconcile_time = Histogram("controller_runtime_reconcile_time_seconds", "Length of a reconciliation "
                                        "per controller.", ["controller"], buckets=RECONCILE_BUCKETS, registry=r)
        self.depth = Gauge("workqueue_depth", "Keys waiting in the work queue.", ["name"], registry=r)
        self.adds = Counter("workqueue_adds_total", "Keys added to the work queue.", ["name"], registry=r)
        self.queue_duration = Histogram("workqueue_queue_duration_seconds", "How long a key waits in the queue "
                                        "before a worker takes it.", ["name"], buckets=QUEUE_BUCKETS, registry=r)
        self.work_duration = Histogram("workqueue_work_duration_seconds", "How long a worker takes over a key.",
                                       ["name"], buckets=QUEUE_BUCKETS, registry=r)
        self.retries = Counter("workqueue_retries_total", "Keys queued again after a failure.", ["name"],
                               registry=r)
        self.time_to_ready = Histogram("modelplane_time_to_ready_seconds", "From not Ready (creation or a new "
                                       "generation) to Ready, per kind.", ["kind"], buckets=READY_BUCKETS,
                                       registry=r)
        self.versions = Counter("modelplane_versions_total", "New versions made (Dataset loads, Model runs).",
                                ["kind"], registry=r)
        self.promotions = Counter("modelplane_promotions_total", "Model versions promoted to champion.",
                                  registry=r)
        self.rollbacks = Counter("modelplane_rollbacks_total", "ModelServer rollouts rolled back.", registry=r)
        self.drift = Gauge("modelplane_drift_detected", "1 when the ModelServer's last monitor run found drift.",
                           ["namespace", "server"], registry=r)
        self.outlier_rate = Gauge("modelplane_outlier_rate", "Share of outliers in the last monitored window.",
                                  ["namespace", "server"], registry=r)
        self.retrains = Counter("modelplane_drift_retrains_total", "Retraining runs started because a server's "
                                "traffic drifted.", registry=r)
        self.culls = Counter("modelplane_notebook_culls_total", "Notebooks suspended for idleness (spec.idle).",
                             registry=r)
        self.events_dropped = Counter("modelplane_events_dropped_total", "Events not posted because more syncs' "
                                      "Events waited than the recorder holds (an events API that cannot keep up).",
                                      registry=r)

    def work_queue(self, name: str) -> QueueSeries:
        return QueueSeries(self.adds.labels(name), self.depth.labels(name), self.queue_duration.labels(name),
                           self.work_duration.labels(name), self.retries.labels(name))

    def serve(self, port: int) -> int:
        """Serve /metrics on `port` (0: any free port) in a daemon thread; returns the port."""
        server, _thread = start_http_server(port, registry=self.registry)
        return int(server.server_port)

    def reconciled(self, kind: str, seconds: float, error: bool, requeue: bool) -> None:
        controller = kind.lower()
        self.reconcile_time.labels(controller).observe(seconds)
        result = "error" if error else "requeue_after" if requeue else "success"
        self.reconcile_total.labels(controller, result).inc()
        if error:
            self.reconcile_errors.labels(controller).inc()

    def noticed(self, kind: str, notice: Notice) -> None:
        """Count what a sync changed (the notices it posted as Events)."""
        match notice.reason:
            case EventReason.READY:
                if notice.seconds is not None:
                    self.time_to_ready.labels(kind).observe(notice.seconds)
            case EventReason.VERSION_CREATED:
                self.versions.labels(kind).inc()
            case EventReason.PROMOTED:
                self.promotions.inc()
            case EventReason.ROLLED_BACK:
                self.rollbacks.inc()
            case EventReason.DRIFT_RETRAIN:
                self.retrains.inc()
            case EventReason.IDLE_SUSPENDED:
                self.culls.inc()
            case _:
                pass

    def monitored(self, namespace: str, server: str, drift: bool, outlier_rate: float | None) -> None:
        self.drift.labels(namespace, server).set(1 if drift else 0)
        if outlier_rate is not None:
            self.outlier_rate.labels(namespace, server).set(outlier_rate)

    def forget(self, namespace: str, server: str) -> None:
        """A deleted server's series go with it (no stale gauge for a server that is gone)."""
        for gauge in (self.drift, self.outlier_rate):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, server)
