"""`python -m modelplane.activity`: every POLL_SECONDS, ask Jupyter Server on the pod's loopback how active it is and
write the answer (report.ActivityReport) to the activity mount, for the operator to read from the bucket.

What counts, and why (Jupyter Server's REST API, jupyter_server/services/...):
- `GET /api/kernels`: each kernel's `last_activity` (moved by every message the kernel sends) and `execution_state`
  (kernels/kernelmanager.py, `kernel_model`). A kernel that is not `idle` is busy, as Kubeflow's culler counts it
  (notebook-controller/pkg/culler/culler.go, `allKernelsAreIdle`), except a `dead` one, which computes nothing.
- `GET /api/terminals`: each terminal's `last_activity` (jupyter_server_terminals, `TerminalManager.get_terminal_model`;
  404 when terminals are disabled: none).
- `GET /api/status`: `started`, the floor of the activity (a server with no kernel has been idle since it started).
  Not its `last_activity`: that includes every API request (`api_last_activity`, base/handlers.py), and an open
  JupyterLab tab polls the API all the time, so a forgotten tab would keep the GPU forever.
Every request carries `no_track_activity=1`, which APIHandler.update_api_activity honours, so the sidecar's own polls
are not activity for Jupyter (or for its own culler, if configured). The token is Jupyter's own (JUPYTER_TOKEN, from
the notebook's Secret), sent as `Authorization: token ...` (jupyter_server/auth/identity.py, get_token).

The report is written in place: the GCS FUSE mount uploads a file when it is closed, and a GCS object is replaced
whole, so the operator reads the old report or the new one, never half of one. A poll that fails writes nothing:
the report goes stale, and the operator counts a busy kernel only as of its last report.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelplane.activity.report import ACTIVITY_DIR, JUPYTER_REPORT, POLL_SECONDS, ActivityReport, utc

JUPYTER_URL = "http://127.0.0.1:8888"
TIMEOUT_SECONDS = 10.0
NOT_BUSY = ("idle", "dead")

log = logging.getLogger("modelplane.activity")


def fetch(base: str, path: str, token: str, missing: Any = None) -> Any:
    """GET a Jupyter API path as JSON; `missing` when it answers 404 (an API the server does not serve)."""
    request = urllib.request.Request(f"{base}{path}?no_track_activity=1",
                                     headers={"Authorization": f"token {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404 and missing is not None:
            return missing
        raise


def observe(base: str, token: str, now: datetime) -> ActivityReport:
    status = fetch(base, "/api/status", token)
    kernels = fetch(base, "/api/kernels", token)
    terminals = fetch(base, "/api/terminals", token, missing=[])
    started = utc(datetime.fromisoformat(status["started"]))
    times = [utc(datetime.fromisoformat(item["last_activity"])) for item in [*kernels, *terminals]
             if item.get("last_activity")]
    return ActivityReport(reported_at=now, started=started, last_activity=max([started, *times]),
                          busy=any(k.get("execution_state") not in NOT_BUSY for k in kernels),
                          kernels=len(kernels), terminals=len(terminals))


def write(directory: Path, report: ActivityReport) -> None:
    (directory / JUPYTER_REPORT).write_text(report.model_dump_json(by_alias=True))


def poll(base: str, token: str, directory: Path, stop: threading.Event, interval: float = POLL_SECONDS,
         clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Report every `interval` until `stop`; a failed poll is logged once per kind of failure, and tried again."""
    failing = ""
    while not stop.is_set():
        try:
            write(directory, observe(base, token, clock()))
            failing = ""
        except (OSError, ValueError, KeyError, TypeError) as error:  # Jupyter not up yet, or an answer not its own
            if type(error).__name__ != failing:
                log.warning("no activity report this time: %s", error)
            failing = type(error).__name__
        stop.wait(interval)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = os.environ.get("JUPYTER_TOKEN", "")
    if not token:
        log.error("JUPYTER_TOKEN is not set")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    poll(JUPYTER_URL, token, Path(ACTIVITY_DIR), stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
