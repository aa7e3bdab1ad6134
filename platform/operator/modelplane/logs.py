"""Logs as Cloud Logging reads them from a container: one JSON object a line on stderr, with `severity`, `message`
and `time`, so a warning is a warning there and a traceback stays inside its entry. The operator and the capture
sidecar log this way."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonLines(logging.Formatter):
    """One JSON object per line: the message escaped, and a traceback inside the object, not after it."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "severity": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_json_lines(level: int = logging.INFO) -> None:
    """Send this process's logs to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    logging.basicConfig(level=level, handlers=[handler])
