"""Alerts computed from the rollups: error-budget burn, latency anomaly, overload, silence.

Each alert has a stable ``key`` (one GitHub issue per key), a severity, a reason in
words and the numbers behind it. ``evaluate`` is pure: store and settings in, alerts
out; opening and closing issues is the handler's job (``bot/handlers/metrics.py``).

Burn rate follows the multi-window recipe: the error rate divided by the error budget
(100% - success target) says how many times too fast the budget is being spent. A rule
fires only when both its long window (enough evidence) and its short window (still
happening) burn faster than its factor, so an alert clears soon after errors stop.

Alerts are computed from executions only (decisions and approvals are never in the
rollups), and each names its culprit: the skill or agent, or, for the overall burn
rate and the latency anomaly, the skill and agent contributing most, with units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.durations import format_duration, parse_duration
from bot.metrics.aggregate import (
    agent_totals,
    latency_buckets,
    rate,
    skill_health,
    skill_totals,
    totals,
)
from bot.metrics.record import RISK_LEVELS
from bot.metrics.store import MINUTE, MetricsStore, pieces

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Alert:
    key: str
    kind: str  # error_budget | latency | overload | silent
    severity: str  # critical | warning
    title: str
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    skill: str | None = None
    agent: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "severity": self.severity,
                "title": self.title, "reason": self.reason, "numbers": self.numbers,
                "skill": self.skill, "agent": self.agent}


@dataclass(frozen=True)
class RiskRaise:
    """Evidence that a skill should run at a higher risk level (a draft policy_change RFC)."""

    skill: str
    current: str
    proposed: str
    alert: Alert


def evaluate(store: MetricsStore, settings: dict[str, Any], now: datetime) -> list[Alert]:
    """Every alert firing at ``now``, most severe first. ``settings`` is the metrics section."""
    end = _end(now)
    alerts = [*burn_rate_alerts(store, settings["slo"], end),
              *latency_alerts(store, settings["latency"], end),
              *overload_alerts(store, settings["agents"], end),
              *silent_alerts(store, settings["agents"], end)]
    return sorted(alerts, key=lambda a: (SEVERITY_ORDER.get(a.severity, 9), a.key))


def burn_rate_alerts(store: MetricsStore, slo: dict[str, Any], end: int) -> list[Alert]:
    budget = (100.0 - float(slo["success_target"])) / 100.0
    minimum = int(slo["min_executions"])
    found: dict[str, Alert] = {}
    for rule in slo["burn_rates"]:
        long_s = int(parse_duration(rule["long"]).total_seconds())
        short_s = int(parse_duration(rule["short"]).total_seconds())
        factor = float(rule["factor"])
        severity = rule.get("severity", "warning")
        overall_long = totals(store, end - long_s, end)
        overall_short = totals(store, end - short_s, end)
        scopes: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
            "all": ((overall_long[0], overall_long[1]), (overall_short[0], overall_short[1]))}
        short_skills = skill_totals(store, end - short_s, end)
        for skill, counts in skill_totals(store, end - long_s, end).items():
            scopes[f"skill:{skill}"] = (counts, short_skills.get(skill, (0, 0)))
        for scope, ((n_long, e_long), (n_short, e_short)) in scopes.items():
            if n_long < minimum or n_short == 0:
                continue
            burn_long = (e_long / n_long) / budget
            burn_short = (e_short / n_short) / budget
            if burn_long < factor or burn_short < factor:
                continue
            key = f"error-budget:{scope}"
            if key in found and SEVERITY_ORDER[found[key].severity] <= SEVERITY_ORDER[severity]:
                continue
            skill_name = scope.removeprefix("skill:") if scope != "all" else None
            who = f"skill {skill_name}" if skill_name else "all skills together"
            culprit = "" if skill_name else _worst(store, end - long_s, end)
            reason = (f"{who} failed {e_long} of {n_long} executions ({rate(e_long, n_long)}%) "
                      f"in the last {rule['long']} and {e_short} of {n_short} "
                      f"({rate(e_short, n_short)}%) in the last {rule['short']}. With a "
                      f"{slo['success_target']}% success target the error budget is "
                      f"{round(budget * 100, 3)}%, so it is burning {burn_long:.1f}x "
                      f"({rule['long']}) and {burn_short:.1f}x ({rule['short']}) faster than "
                      f"it can last; this rule fires at {factor:g}x.{culprit}")
            found[key] = Alert(
                key=key, kind="error_budget", severity=severity,
                title=f"Error budget burning {burn_long:.1f}x: {who}",
                reason=reason, skill=skill_name,
                numbers={"long_window": rule["long"], "short_window": rule["short"],
                         "executions_long": n_long, "errors_long": e_long,
                         "error_rate_long": rate(e_long, n_long),
                         "executions_short": n_short, "errors_short": e_short,
                         "error_rate_short": rate(e_short, n_short),
                         "burn_rate_long": round(burn_long, 2),
                         "burn_rate_short": round(burn_short, 2),
                         "factor": factor, "error_budget_percent": round(budget * 100, 3)})
    return list(found.values())


def latency_alerts(store: MetricsStore, cfg: dict[str, Any], end: int) -> list[Alert]:
    recent_s = _seconds(cfg["window"])
    trailing_s = _seconds(cfg["trailing"])
    bucket_s = max(MINUTE, _seconds(cfg["bucket"]) // MINUTE * MINUTE)
    n_recent, _, lat_recent = totals(store, end - recent_s, end)
    start = (end - recent_s - trailing_s) // bucket_s * bucket_s
    means = [lat / n for _, n, lat in latency_buckets(store, start, end - recent_s, bucket_s)
             if n]
    if n_recent == 0 or len(means) < int(cfg["min_buckets"]):
        return []
    recent = lat_recent / n_recent
    normal = sum(means) / len(means)
    spread = math.sqrt(sum((m - normal) ** 2 for m in means) / len(means))
    z = (recent - normal) / spread if spread > 0 else (math.inf if recent > normal else 0.0)
    if z < float(cfg["z_threshold"]) or recent < float(cfg["min_ratio"]) * normal:
        return []
    z_text = "far" if math.isinf(z) else f"{z:.1f} standard deviations"
    slowest = _slowest(store, end - recent_s, end)
    return [Alert(
        key="latency", kind="latency", severity="warning",
        title=f"Latency anomaly: mean {recent:.0f} ms over the last {cfg['window']}",
        reason=(f"The mean latency over the last {cfg['window']} is {recent:.1f} ms "
                f"({n_recent} executions), {z_text} above the trailing {cfg['trailing']} "
                f"({len(means)} buckets of {cfg['bucket']}: mean {normal:.1f} ms, "
                f"standard deviation {spread:.1f} ms) and {recent / normal:.1f}x the normal "
                f"mean; alerts fire at {cfg['z_threshold']} standard deviations.{slowest}"),
        numbers={"window": cfg["window"], "recent_mean_ms": round(recent, 1),
                 "recent_executions": n_recent, "trailing_mean_ms": round(normal, 1),
                 "trailing_stddev_ms": round(spread, 1), "trailing_buckets": len(means),
                 "z_score": None if math.isinf(z) else round(z, 2),
                 "z_threshold": cfg["z_threshold"]})]


def overload_alerts(store: MetricsStore, cfg: dict[str, Any], end: int) -> list[Alert]:
    span = _seconds(cfg["overload_window"])
    limit = int(cfg["overload_max"])
    out = []
    for agent, (n, err) in sorted(agent_totals(store, end - span, end).items()):
        if n <= limit:
            continue
        out.append(Alert(
            key=f"overload:{agent}", kind="overload", severity="warning", agent=agent,
            title=f"Agent overloaded: {agent}",
            reason=(f"agent {agent} ran {n} executions in the last {cfg['overload_window']}, "
                    f"above the limit of {limit} ({n / limit:.1f}x); {err} of them failed."),
            numbers={"window": cfg["overload_window"], "executions": n, "limit": limit,
                     "errors": err, "error_rate": rate(err, n)}))
    return out


def _worst(store: MetricsStore, since: int, until: int) -> str:
    """Which skill and agent failed most in ``[since, until)``, as a sentence."""
    parts = []
    for what, counts in (("skill", skill_totals(store, since, until)),
                         ("agent", agent_totals(store, since, until))):
        failing = [(err, name, n) for name, (n, err) in counts.items() if err]
        if failing:
            err, name, n = max(failing)
            parts.append(f"{what} {name} ({err} failed of {n} executions, {rate(err, n)}%)")
    return f" Most failures: {' and '.join(parts)}." if parts else ""


def _slowest(store: MetricsStore, since: int, until: int) -> str:
    """Which skill and agent had the highest mean latency in ``[since, until)``."""
    roll = store.rollup(pieces(since, until))
    parts = []
    skills: dict[str, tuple[int, float]] = {}
    for (skill, _level), (n, _err, lat) in roll.skills().items():
        total_n, total_lat = skills.get(skill, (0, 0.0))
        skills[skill] = (total_n + n, total_lat + lat)
    agents = {agent: (n, lat) for agent, (n, _err, lat, _last) in roll.agents().items()}
    for what, sums in (("skill", skills), ("agent", agents)):
        ranked = [(lat / n, name, n) for name, (n, lat) in sums.items() if n]
        if ranked:
            mean, name, n = max(ranked)
            parts.append(f"{what} {name} (mean {mean:.1f} ms over {n} executions)")
    return f" Slowest: {' and '.join(parts)}." if parts else ""


def silent_alerts(store: MetricsStore, cfg: dict[str, Any], end: int) -> list[Alert]:
    quiet = _seconds(cfg["silent_after"])
    out = []
    for agent, last in sorted(store.agents_last_seen(end - _seconds(cfg["lookback"])).items()):
        idle = end - last
        if idle < quiet:
            continue
        out.append(Alert(
            key=f"silent:{agent}", kind="silent", severity="warning", agent=agent,
            title=f"Agent silent: {agent}",
            reason=(f"agent {agent} has reported no execution for "
                    f"{format_duration(_delta(idle))} (last at {_iso(last)}); agents are "
                    f"reported silent after {cfg['silent_after']}."),
            numbers={"last_execution": _iso(last), "silent_seconds": int(idle),
                     "silent_after": cfg["silent_after"]}))
    return out


def risk_raises(store: MetricsStore, alerts: list[Alert], now: datetime) -> list[RiskRaise]:
    """For each skill burning its error budget, the next risk level up (none above R3)."""
    end = _end(now)
    out = []
    for alert in alerts:
        if alert.kind != "error_budget" or alert.skill is None:
            continue
        span = _seconds(str(alert.numbers["long_window"]))
        info = skill_health(store, end - span, end).get(alert.skill)
        if not info:
            continue
        current = str(info["risk_level"])
        index = RISK_LEVELS.index(current)
        if index + 1 < len(RISK_LEVELS):
            out.append(RiskRaise(skill=alert.skill, current=current,
                                 proposed=RISK_LEVELS[index + 1], alert=alert))
    return out


def _seconds(text: str) -> int:
    return int(parse_duration(text).total_seconds())


def _end(now: datetime) -> int:
    seconds = now.timestamp()
    return int(seconds // MINUTE * MINUTE + MINUTE)


def _delta(seconds: float) -> timedelta:
    return timedelta(seconds=int(seconds))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
