"""The dashboard view: what happened in a period, read from the rollups only.

Keys follow the CVF design's dashboard view (``period``, ``summary``,
``risk_distribution``, ``approvals``, ``quality_metrics``) plus ``agent_health``, a
``time_series`` for charts and ``decisions``. Each section is about one kind of record
(``bot.metrics.facts``): ``summary``, ``risk_distribution``, ``agent_health``,
``skills``, ``quality_metrics`` and ``time_series`` about executions; ``approvals``
about approvals (the approval records, plus approvals agents report inside their
execution records); ``decisions`` about the routing gate's decisions (counts by
decision and risk, what is pending now and the oldest pending).

Rates are percentages rounded to two decimals. A rate whose denominator is zero (no
executions, no approvals needed, no R2/R3 executions) is ``None`` (JSON ``null``,
shown as "—"), never 0 or 100, which would read as something measured. Counts are 0.

Windows are whole minutes: "the last 24h" runs from 24 hours before the end of the
current minute to the end of the current minute, so a report taken twice in the
same minute gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.errors import InputError
from bot.metrics.decisions import Facts, approval_counts, decisions_section
from bot.metrics.record import RISK_LEVELS
from bot.metrics.rollup import APPROVAL, LATENCY
from bot.metrics.store import DAY, HOUR, MINUTE, MetricsStore, pieces

PERIODS: dict[str, int] = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
# Chart step per period and the coarsest rollup that fits inside one step.
_STEPS: dict[str, tuple[int, int]] = {"1h": (5 * MINUTE, MINUTE), "24h": (HOUR, HOUR),
                                      "7d": (6 * HOUR, HOUR), "30d": (DAY, DAY)}
_CUSTOM_STEPS = ((MINUTE, MINUTE), (5 * MINUTE, MINUTE), (15 * MINUTE, MINUTE), (HOUR, HOUR),
                 (6 * HOUR, HOUR), (DAY, DAY), (7 * DAY, DAY))
HIGH_RISK = ("R2", "R3")


@dataclass(frozen=True)
class Window:
    """``[since, until)`` in epoch seconds (whole minutes), with its chart step."""

    label: str
    since: int
    until: int
    step: int
    max_res: int

    @property
    def seconds(self) -> int:
        return self.until - self.since


def window(period: str | None = None, *, now: datetime, since: datetime | None = None,
           until: datetime | None = None) -> Window:
    """The window for a named period (``1h``, ``24h``, ``7d``, ``30d``) or since/until."""
    # "Now" counts the current minute in full; an --until given by the user is where
    # the window stops ([since, until), like --since), rounded up to a whole minute.
    end = _ceil_minute(now) if until is None else int(-(-until.timestamp() // MINUTE) * MINUTE)
    if since is not None:
        start = int(since.timestamp()) // MINUTE * MINUTE
        if start >= end:
            raise InputError(f"--since ({_iso(start)}) must be before --until ({_iso(end)})",
                             hint="swap the two, or leave --until out to mean now")
        span = end - start
        step, max_res = next(((s, r) for s, r in _CUSTOM_STEPS if span / s <= 60),
                             _CUSTOM_STEPS[-1])
        return Window(label=f"{_iso(start)} to {_iso(end)}", since=start, until=end,
                      step=step, max_res=max_res)
    name = period or "24h"
    if name not in PERIODS:
        raise InputError(f'unknown period "{name}"',
                         hint=f"use one of {', '.join(PERIODS)} or --since/--until")
    step, max_res = _STEPS[name]
    return Window(label=name, since=end - PERIODS[name], until=end, step=step, max_res=max_res)


def dashboard(store: MetricsStore, win: Window) -> dict[str, Any]:
    """The whole view for ``win``; cost depends on the window, not on the number of records."""
    roll = store.rollup(pieces(win.since, win.until))
    n = ok = audit_ok = needed = granted = rejected = 0
    lat_sum = 0.0
    risk = dict.fromkeys(RISK_LEVELS, 0)
    high_n = high_ok = 0
    for level, _decision, rn, rok, rlat, raudit, rneeded, rgranted, rrejected in roll.main():
        n += rn
        ok += rok
        lat_sum += rlat
        audit_ok += raudit
        needed += rneeded
        granted += rgranted
        rejected += rrejected
        risk[level] = risk.get(level, 0) + rn
        if level in HIGH_RISK:
            high_n += rn
            high_ok += rok
    p50, p95, p99 = roll.percentiles(LATENCY, (50, 95, 99))
    facts = Facts.read(store, win.since, win.until)
    requested, granted_r, rejected_r, pending_r, to_grant = approval_counts(facts)
    needed, granted, rejected = needed + requested, granted + granted_r, rejected + rejected_r
    (median_approve,) = roll.percentiles(APPROVAL, (50,), extra=to_grant)
    return {
        "period": win.label,
        "since": _iso(win.since),
        "until": _iso(win.until),
        "summary": {
            "total_executions": n,
            "success_rate": rate(ok, n),
            "error_rate": rate(n - ok, n),
            "average_latency_ms": _round(lat_sum / n if n else None, 1),
            "p50_latency_ms": _round(p50, 2),
            "p95_latency_ms": _round(p95, 2),
            "p99_latency_ms": _round(p99, 2),
        },
        "risk_distribution": risk,
        "decisions": decisions_section(facts),
        "approvals": {
            "total_needed": needed,
            "granted": granted,
            "rejected": rejected,
            "pending": pending_r + max(0, needed - requested - (granted - granted_r)
                                       - (rejected - rejected_r)),
            "acceptance_rate": rate(granted, needed),
            "median_time_to_approve_seconds": _round(median_approve, 1),
        },
        "agent_health": _agent_view(roll.agents(), total=n),
        "skills": _skill_view(roll.skills()),
        "quality_metrics": {
            "audit_completeness": rate(audit_ok, n),
            "high_risk_success_rate": rate(high_ok, high_n),
            "human_approval_acceptance_rate": rate(granted, granted + rejected),
        },
        "time_series": time_series(store, win),
    }


def _agent_view(agents: dict[str, tuple[int, int, float, float]], *,
                total: int) -> dict[str, dict[str, Any]]:
    return {agent: {"load": n,
                    "load_share": rate(n, total),
                    "error_rate": rate(err, n),
                    "average_latency_ms": _round(lat / n if n else None, 1),
                    "last_execution": _iso(last)}
            for agent, (n, err, lat, last) in sorted(agents.items())}


def skill_health(store: MetricsStore, since: int, until: int) -> dict[str, dict[str, Any]]:
    """Per skill: executions, error rate and the risk level it ran at most."""
    return _skill_view(store.rollup(pieces(since, until)).skills())


def _skill_view(skills: dict[tuple[str, str], tuple[int, int, float]]
                ) -> dict[str, dict[str, Any]]:
    sums: dict[str, dict[str, Any]] = {}
    for (skill, level), (rn, rerr, rlat) in skills.items():
        row = sums.setdefault(skill, {"n": 0, "err": 0, "lat": 0.0, "risk": {}})
        row["n"] += rn
        row["err"] += rerr
        row["lat"] += rlat
        row["risk"][level] = row["risk"].get(level, 0) + rn
    return {skill: {"executions": r["n"], "errors": r["err"],
                    "error_rate": rate(r["err"], r["n"]),
                    "average_latency_ms": _round(r["lat"] / r["n"] if r["n"] else None, 1),
                    "risk_level": max(r["risk"], key=lambda k: (r["risk"][k], k))}
            for skill, r in sorted(sums.items())}


def time_series(store: MetricsStore, win: Window) -> dict[str, Any]:
    """One point per step (aligned to the step, so the first may be partial)."""
    first = win.since // win.step * win.step
    starts = list(range(first, win.until, win.step))
    sums = store.rollup(pieces(win.since, win.until, win.max_res), main_only=True).series(
        win.step, first, len(starts))
    return {"step_seconds": win.step, "points": [
        {"start": _iso(s), "executions": int(n), "errors": int(err),
         "error_rate": rate(err, n),
         "average_latency_ms": _round(lat / n if n else None, 1),
         "high_risk_executions": int(high)}
        for s, n, err, lat, high in zip(starts, sums["n"], sums["errors"], sums["latency"],
                                        sums["high_n"], strict=True)]}


# -- plain sums the alerts and the router read ------------------------------------
def totals(store: MetricsStore, since: int, until: int) -> tuple[int, int, float]:
    """``(executions, errors, latency sum ms)`` over ``[since, until)``."""
    n = err = 0
    lat = 0.0
    for row in store.rollup(pieces(since, until), main_only=True).main():
        n += row[2]
        err += row[2] - row[3]
        lat += row[4]
    return n, err, lat


def skill_totals(store: MetricsStore, since: int, until: int) -> dict[str, tuple[int, int]]:
    """``{skill: (executions, errors)}`` over ``[since, until)``."""
    out: dict[str, tuple[int, int]] = {}
    for (skill, _level), (rn, rerr, _lat) in store.rollup(pieces(since, until)).skills().items():
        n, err = out.get(skill, (0, 0))
        out[skill] = (n + rn, err + rerr)
    return out


def agent_totals(store: MetricsStore, since: int, until: int) -> dict[str, tuple[int, int]]:
    """``{agent: (executions, errors)}`` over ``[since, until)``."""
    return {agent: (n, err) for agent, (n, err, _lat, _last)
            in store.rollup(pieces(since, until)).agents().items()}


def latency_buckets(store: MetricsStore, since: int, until: int,
                    bucket: int) -> list[tuple[int, int, float]]:
    """``(bucket start, executions, latency sum)`` per ``bucket`` seconds, oldest first."""
    max_res = next(r for r in (DAY, HOUR, MINUTE) if bucket % r == 0)
    first = since // bucket * bucket
    count = -(-(until - first) // bucket)
    sums = store.rollup(pieces(since, until, max_res), main_only=True).series(bucket, first,
                                                                              count)
    return [(first + i * bucket, int(n), lat)
            for i, (n, lat) in enumerate(zip(sums["n"], sums["latency"], strict=True)) if n]


@dataclass(frozen=True)
class AgentHealth:
    """What the router needs to know about one agent: plain numbers."""

    agent: str
    executions: int
    errors: int
    error_rate: float | None  # percent; None without executions
    healthy: bool


def agent_health_feed(store: MetricsStore, *, now: datetime, window_seconds: int = HOUR,
                      unhealthy_error_rate: float = 20.0) -> dict[str, AgentHealth]:
    """Per agent error rate over the last ``window_seconds``; for the router's ordering.

    An agent without executions in the window is healthy (nothing says otherwise).
    """
    end = _ceil_minute(now)
    out = {}
    for agent, (n, err) in agent_totals(store, end - window_seconds, end).items():
        error_rate = rate(err, n)
        out[agent] = AgentHealth(agent=agent, executions=n, errors=err, error_rate=error_rate,
                                 healthy=error_rate is None or error_rate <= unhealthy_error_rate)
    return out


def rate(part: float, whole: float) -> float | None:
    """``part`` as a percentage of ``whole``, two decimals; ``None`` when ``whole`` is 0."""
    return round(100.0 * part / whole, 2) if whole else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _ceil_minute(moment: datetime) -> int:
    seconds = moment.timestamp()
    return int(-(-seconds // MINUTE) * MINUTE) if seconds % MINUTE else int(seconds) + MINUTE


def _iso(epoch: float | None) -> str | None:
    if epoch is None or epoch <= 0:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def parse_moment(text: str, *, now: datetime, what: str = "--since") -> datetime:
    """``2026-01-31T12:00:00Z``, ``2026-01-31`` (UTC midnight) or a duration ago (``36h``)."""
    from bot.durations import parse_duration
    from bot.errors import CvfError

    value = text.strip()
    try:
        return now - parse_duration(value)
    except CvfError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f'{what}: expected a time like "2026-01-31T12:00:00Z", a date, or a '
                         f'duration ago like "36h", got "{text}"') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
