"""ModelServer: serve a Ready Model over HTTP inside the cluster (port 8080; no public endpoint), optionally record a
sample of its traffic (`logging`) and watch it for drift and outliers (`monitoring`)."""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue

from modelplane.api.common import (
    AT_MOST_ONE_IMAGE,
    REQUEST_ID_RULE,
    ApiModel,
    ObjectRef,
    RequestID,
    Resources,
    Schedule,
    Startup,
    Status,
    Workload,
    rule,
    validations,
)
from modelplane.api.monitoring import MonitorSettings
from modelplane.api.resource import SERVICE_NAME_RULE, Kind, column

MONITORING_NEEDS_LOGGING = rule("!has(self.monitoring) || has(self.logging)",
                                "monitoring reads the traffic that logging records: set spec.logging (e.g. {})")
DEFAULT_PATTERNS: list[JsonValue] = ["email", "phone", "card"]
FIELD_PATH = r"^[A-Za-z_][A-Za-z0-9_-]*(\[\*\])?(\.[A-Za-z_][A-Za-z0-9_-]*(\[\*\])?)*$"


class Autoscaling(ApiModel):
    """Horizontal autoscaling between minReplicas and maxReplicas."""

    model_config = ConfigDict(json_schema_extra=validations(rule(
        "self.minReplicas <= self.maxReplicas", "autoscaling.minReplicas must not exceed maxReplicas")))

    min_replicas: int = Field(default=1, ge=1, le=100, description="Fewest replicas (at least one keeps serving).")
    max_replicas: int = Field(ge=1, le=100, description="Most replicas; bounded by the GPU pool's maxNodes.")
    target_cpu_utilization: int = Field(default=80, ge=10, le=100, alias="targetCPUUtilization",
                                        description="Average CPU utilisation (percent) to scale on.")


class ServedModel(ObjectRef):
    """The Model to serve: its champion (what evaluation promoted), or a pinned version."""

    version: int | None = Field(default=None, ge=1,
                                description="Serve this version instead of the champion (a ModelVersion).")


class Redaction(ApiModel):
    """What never reaches the bucket: listed fields are replaced whole, patterns inside every string."""

    fields: list[Annotated[str, Field(max_length=256, pattern=FIELD_PATH)]] = Field(
        default_factory=list, max_length=32, json_schema_extra={"default": []},
        description="JSON fields of requests and responses to replace by [REDACTED], e.g. `messages[*].content`.")
    patterns: list[Annotated[str, Field(max_length=512)]] = Field(
        default_factory=lambda: [str(p) for p in DEFAULT_PATTERNS], max_length=32,
        json_schema_extra={"default": DEFAULT_PATTERNS},
        description="`email`, `phone`, `card` or a regular expression: matches are replaced in every string.")


class PayloadLogging(ApiModel):
    """Record a sample of the traffic: a proxy in front of the server passes every byte through unchanged
    (streaming included) and writes the sample, redacted, as gzip JSON lines under the server's bucket prefix
    (`.../modelservers/<name>/payloads/version=<v>/date=<d>/`). It never slows or fails serving: when the bucket
    cannot keep up, records are dropped and counted."""

    sample_rate: float = Field(default=1, ge=0, le=1, description="Share of requests recorded.")
    max_body_bytes: int = Field(default=65536, ge=1024, le=2**20,
                                description="A request or response body past this is not recorded (counted).")
    redact: Redaction = Field(default_factory=Redaction, json_schema_extra={"default": {}},
                              description="Kept out of the records (default: e-mail, phone and card numbers).")
    batch_records: int = Field(default=500, ge=1, le=10000, description="Records per file written.")
    flush_seconds: int = Field(default=60, ge=1, le=3600, description="A file is written at least this often.")


class DatasetVersionRef(ObjectRef):
    version: int = Field(ge=1, description="The Dataset version.")


class Monitoring(ApiModel):
    """On a schedule, compare a recent window of the recorded traffic with a reference (by default the Dataset
    version the served model was trained on, from its lineage) for drift and outliers; report it in status, as an
    Event and as metrics, and with `onDrift: Retrain` retrain the Model."""

    model_config = ConfigDict(json_schema_extra=validations(rule(
        "!has(self.resources.gpu)", "monitoring runs on CPUs: remove monitoring.resources.gpu")))

    schedule: Schedule = Field(default_factory=lambda: Schedule(cron="0 * * * *"),
                               json_schema_extra={"default": {"cron": "0 * * * *"}},
                               description="When to run (default: hourly).")
    window_hours: int = Field(default=24, ge=1, le=24 * 30, description="How much recent traffic each run reads.")
    reference: DatasetVersionRef | None = Field(
        default=None, description="Compare with this Dataset version instead of the served model's training data.")
    detection: MonitorSettings = Field(default_factory=MonitorSettings, json_schema_extra={"default": {}},
                                 description="The tests, their significance and the outlier detector.")
    request_id: RequestID | None = Field(
        default=None, alias="requestID", description="A new value runs the monitor now, whatever the schedule.",
        json_schema_extra=validations(rule(REQUEST_ID_RULE, "monitoring.requestID must be letters, digits and '-'")))
    on_drift: Literal["Report", "Retrain"] = Field(
        default="Report", description="Report drift, or also start a retraining run of the Model (which needs "
                                      "spec.retrain; its cooldownSeconds holds).")
    resources: Resources = Field(
        default_factory=lambda: Resources(cpu="1", memory="2Gi", disk="10Gi"),
        json_schema_extra={"default": {"cpu": "1", "memory": "2Gi", "disk": "10Gi"}},
        description="The monitor Job's resources: CPU, memory for the window, disk for the FUSE cache.")


class ModelServerSpec(Workload):
    """Serves the model mounted read-only at /content/model; the default image is an OpenAI-compatible server."""

    model_config = ConfigDict(json_schema_extra=validations(AT_MOST_ONE_IMAGE, MONITORING_NEEDS_LOGGING))

    model: ServedModel = Field(description="The Model to serve; the server waits until it is Ready.")
    replicas: int = Field(default=1, ge=0, le=100, description="Replicas (the starting count with autoscaling).")
    autoscaling: Autoscaling | None = None
    rollout_deadline_seconds: int = Field(
        default=1800, ge=60, le=86400,
        description="A rollout to a new version that is not ready in this time is rolled back to the last good one.")
    logging: PayloadLogging | None = Field(default=None, description="Record a sample of the traffic.")
    monitoring: Monitoring | None = Field(default=None, description="Watch the recorded traffic for drift.")


class Served(ApiModel):
    """A version of the Model and where its weights are."""

    version: int | None = Field(default=None, description="The Model version.")
    url: str = Field(max_length=2048, description="gs:// URL of its weights.")


class MonitorRun(ApiModel):
    """The current (or last) monitor run."""

    number: int = Field(ge=1)
    started: str = Field(json_schema_extra={"format": "date-time"})
    window_start: str = Field(json_schema_extra={"format": "date-time"})
    window_end: str = Field(json_schema_extra={"format": "date-time"})
    version: int | None = Field(default=None, description="The served Model version whose traffic it reads.")
    reference: str = Field(max_length=512, description="What the traffic is compared with.")
    request_id: str | None = Field(default=None, alias="requestID", description="The request that started it.")


class FeatureDrift(ApiModel):
    name: str = Field(max_length=128)
    statistic: float
    p_value: float
    psi: float
    drift: bool


class MonitorReport(ApiModel):
    """The last run's verdict (the whole report is report.json in the run's bucket prefix)."""

    run: int = Field(ge=1)
    time: str = Field(json_schema_extra={"format": "date-time"})
    drift: bool
    samples: int = Field(ge=0)
    outlier_rate: float | None = None
    message: str = Field(max_length=1024)
    features: list[FeatureDrift] = Field(default_factory=list, max_length=64,
                                         description="Per feature: the test's statistic, corrected p-value and PSI.")
    url: str = Field(max_length=2048, description="gs:// URL of report.json.")


class MonitoringStatus(ApiModel):
    since: str = Field(json_schema_extra={"format": "date-time"}, description="When monitoring was turned on.")
    run: MonitorRun | None = None
    failed_run: int | None = Field(default=None, description="The run that failed, when the last one did.")
    last_report: MonitorReport | None = None
    last_drift: MonitorReport | None = Field(default=None, description="The newest report that found drift.")
    message: str = Field(default="", max_length=1024, description="Why monitoring cannot run, when it cannot.")


class ModelServerStatus(Status):
    startup: Startup | None = Field(default=None, description="The pods' way to ready, while they are not.")
    replicas: int = 0
    ready_replicas: int = 0
    url: str | None = Field(default=None, description="In-cluster URL of the server.")
    served_version: int | None = Field(default=None, description="The version the Deployment serves (or rolls to).")
    target: Served | None = Field(default=None, description="What the Deployment serves or rolls to.")
    last_good: Served | None = Field(default=None, description="The last version that rolled out fully.")
    rejected: list[int] = Field(default_factory=list, max_length=20,
                                description="Versions whose rollout failed: not tried again.")
    monitoring: MonitoringStatus | None = None


MODEL_SERVER = Kind(
    kind="ModelServer", plural="modelservers", short_name="msrv",
    description="Serves a Model over HTTP inside the cluster.",
    spec=ModelServerSpec, status=ModelServerStatus,
    columns=(column("Model", ".spec.model.name"),
             column("Version", ".status.servedVersion", "integer", "The Model version served"),
             column("Replicas", ".status.readyReplicas", "integer", "Replicas ready to serve"),
             column("Drift", ".status.monitoring.lastReport.drift", "boolean", "Drift in the last monitored window"),
             column("GPU", ".spec.resources.gpu.type", priority=1)),
    name_rules=(SERVICE_NAME_RULE,),
)
