"""Cron schedules (a Dataset's loads, a ModelServer's monitor runs), read with cronsim as cron reads them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from modelplane.api.common import Schedule


def next_fire(schedule: Schedule | None, last_start: str) -> datetime | None:
    """When the schedule next fires after the last run started (None without a schedule): after downtime this is
    in the past, and one run catches up, not one per missed time."""
    if not schedule:
        return None
    zone = ZoneInfo(schedule.time_zone)
    return next(CronSim(schedule.cron, datetime.fromisoformat(last_start).astimezone(zone)))


def schedule_problem(schedule: Schedule | None, field: str) -> str | None:
    """Why the schedule cannot be followed (the CRD checks only the field count), or None."""
    if not schedule:
        return None
    try:
        next(CronSim(schedule.cron, datetime.now(ZoneInfo(schedule.time_zone))))
    except (CronSimError, ZoneInfoNotFoundError, ValueError) as error:
        return f"{field}: {error}; e.g. cron `0 3 * * *`, timeZone `Europe/Berlin`"
    return None
