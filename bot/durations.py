"""Durations written the way people write them in config and commands: ``14d``, ``36h``,
``1w2d``, ``90m``, ``30s``; and the one way moments are shown to people (``shown_time``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.errors import CvfError

DURATION_PATTERN = r"^(\d+[wdhms])+$"
_PART = re.compile(r"(\d+)([wdhms])")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """``"1w2d"`` -> ``timedelta(days=9)``; raise ``CvfError`` naming the expected form."""
    value = str(text).strip().lower()
    if not re.fullmatch(DURATION_PATTERN, value):
        raise CvfError(f'expected a duration like "14d", got "{text}"',
                       hint='use a number and a unit: w, d, h, m or s, e.g. "7d" or "36h"')
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(value))
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The inverse of ``parse_duration`` for whole seconds: ``timedelta(days=9)`` -> ``"9d"``."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def shown_time(moment: datetime | str | None) -> str:
    """A moment as every comment, reply and page shows it: ``2026-03-01 14:05 UTC``.

    One format everywhere (no ``T``, no seconds or microseconds, always the zone), so
    readers can compare what the status comment, a reply and the dashboard say.
    Accepts a datetime or an ISO string (``2026-03-01T14:05:09Z``); ``None`` -> ``"—"``.
    """
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return str(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
