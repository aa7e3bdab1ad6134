"""The capture proxy's settings: what the operator puts in the sidecar's environment and the proxy reads back.

One table of fields and variables serves both directions (`to_env` in builders/server.py, `from_env` in the proxy),
so the two halves cannot spell a variable differently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelplane.api.modelserver import Redaction
from modelplane.capture.redact import compile_patterns
from modelplane.names import CAPTURE_METRICS_PORT

PROXY_PORT = 8080  # what the Service targets: the proxy, in front of the model server
UPSTREAM_PORT = 8081  # where the model server listens behind it (MODELPLANE_SERVER_PORT)
UPSTREAM_HOST = "127.0.0.1"  # and only there: no other pod reaches it past the proxy (MODELPLANE_SERVER_HOST)
PAYLOADS_DIR = "/content/payloads"  # the server's payload prefix, mounted read-write into the proxy only
PROXY_HEALTH_PATH = "/-/capture/healthz"  # the sidecar's own readiness probe (the proxy serves, the pod spec probes)


class CaptureConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    server: str = Field(min_length=1)
    model_version: int | None = None
    port: int = Field(default=PROXY_PORT, ge=1, le=65535)
    upstream: str = f"http://{UPSTREAM_HOST}:{UPSTREAM_PORT}"
    health_path: str = Field(default="/health", pattern="^/", description="The model server's readiness path.")
    directory: str = PAYLOADS_DIR
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    redact: Redaction = Field(default_factory=Redaction)
    max_body_bytes: int = Field(default=65536, ge=1)
    batch_records: int = Field(default=500, ge=1)
    flush_seconds: float = Field(default=60, gt=0)
    queue_bytes: int = Field(default=16 * 2**20, ge=1024, description="Records waiting for the bucket, at most.")
    metrics_port: int = Field(default=CAPTURE_METRICS_PORT, ge=1, le=65535)

    @field_validator("redact")
    @classmethod
    def _patterns_compile(cls, redact: Redaction) -> Redaction:
        compile_patterns(redact.patterns)  # a bad regex fails here, at start-up, not on the first request
        return redact

    # Each field and the variable it travels in.
    ENV: ClassVar[tuple[tuple[str, str], ...]] = (
        ("server", "MODELPLANE_SERVER"), ("model_version", "MODELPLANE_MODEL_VERSION"),
        ("port", "MODELPLANE_CAPTURE_PORT"), ("upstream", "MODELPLANE_CAPTURE_UPSTREAM"),
        ("health_path", "MODELPLANE_CAPTURE_HEALTH_PATH"),
        ("directory", "MODELPLANE_CAPTURE_DIR"), ("sample_rate", "MODELPLANE_CAPTURE_SAMPLE_RATE"),
        ("redact", "MODELPLANE_CAPTURE_REDACT"), ("max_body_bytes", "MODELPLANE_CAPTURE_MAX_BODY_BYTES"),
        ("batch_records", "MODELPLANE_CAPTURE_BATCH_RECORDS"), ("flush_seconds", "MODELPLANE_CAPTURE_FLUSH_SECONDS"),
        ("queue_bytes", "MODELPLANE_CAPTURE_QUEUE_BYTES"), ("metrics_port", "MODELPLANE_CAPTURE_METRICS_PORT"))

    def to_env(self) -> dict[str, str]:
        wire = self.model_dump(mode="json")
        return {var: ("" if wire[key] is None else json.dumps(wire[key]) if isinstance(wire[key], dict)
                      else str(wire[key])) for key, var in self.ENV}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CaptureConfig:
        """The settings from MODELPLANE_* variables; a bad one raises ValueError naming the variable."""
        values: dict[str, Any] = {}
        for key, var in cls.ENV:
            raw = env.get(var)
            if raw is None or (raw == "" and key == "model_version"):
                continue
            try:
                values[key] = json.loads(raw) if key == "redact" else raw
            except ValueError as error:
                raise ValueError(f"{var}: not JSON: {error}") from None
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            names = dict(cls.ENV)
            problems = [f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in error.errors()]
            raise ValueError("; ".join(problems)) from None
