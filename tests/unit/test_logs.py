"""The operator's and the capture sidecar's log lines, as Cloud Logging parses a container's output: one JSON object
per line, whose `severity` and `message` it reads, with a traceback inside the entry."""

from __future__ import annotations

import json
import logging
import sys

from modelplane.logs import JsonLines


def test_a_record_is_one_json_line_with_its_severity_and_its_traceback_inside() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord("modelplane.operator", logging.WARNING, __file__, 1, "syncing %s failed",
                                   ("ml/d",), sys.exc_info())
    line = JsonLines().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["severity"], entry["logger"], entry["message"]) == ("WARNING", "modelplane.operator",
                                                                      "syncing ml/d failed")
    assert entry["time"].endswith("+00:00") and "ValueError: bad\nvalue" in entry["exception"]
