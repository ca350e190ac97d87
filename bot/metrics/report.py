"""Reports of the dashboard view: markdown (PR comments, job summaries), JSON, static HTML.

The words and layout live in ``templates/metrics/``; this module prepares numbers for
them (formatting, chart geometry) and cuts markdown to GitHub's comment limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.durations import shown_time
from bot.errors import InputError
from bot.metrics import charts
from bot.metrics.alerts import Alert
from bot.metrics.facts import DECISION_WORDS
from bot.templating import render

FORMATS = ("markdown", "json", "html")
ROLES = ("executive", "operator", "compliance")
COMMENT_LIMIT = 65_536
MAX_TABLE_ROWS = 25


# Every figure the reports show, defined once: the dashboard's tooltips and footnotes and
# the markdown report's footnote read these, so no number appears without its meaning.
DEFINITIONS: dict[str, tuple[str, str]] = {
    "total_executions": ("Executions", "agent executions recorded in the period"),
    "success_rate": ("Success rate", "executions that succeeded, of all executions"),
    "error_rate": ("Error rate", "executions that failed, of all executions"),
    "average_latency_ms": ("Average latency", "mean time from start to end of an execution"),
    "p50_latency_ms": ("p50 latency", "half of the executions took at most this long"),
    "p95_latency_ms": ("p95 latency", "95 in 100 executions took at most this long"),
    "p99_latency_ms": ("p99 latency", "99 in 100 executions took at most this long"),
    "audit_completeness": ("Audit completeness",
                           "executions whose record carries its full audit trail (who asked, "
                           "which rule, the report), of all executions"),
    "high_risk_success_rate": ("High-risk (R2/R3) success",
                               "R2 and R3 executions that succeeded, of all R2 and R3 ones"),
    "total_needed": ("Approvals needed",
                     "approvals requested in the period: R2/R3 pull request heads the routing "
                     "gate asked an approver role for, plus executions agents reported as "
                     "needing one"),
    "granted": ("Granted", "approvals given"),
    "rejected": ("Rejected", "approvals refused"),
    "pending": ("Pending", "approvals still waiting at the end of the period"),
    "acceptance_rate": ("Approvals granted (of needed)",
                        "approvals granted, of all approvals needed (pending ones count as "
                        "not granted)"),
    "human_approval_acceptance_rate": ("Approvals granted (of decided)",
                                       "approvals granted, of those granted or rejected "
                                       "(pending ones left out)"),
    "load": ("Load", "executions the agent ran in the period"),
    "load_share": ("Share", "the agent's executions, of all executions"),
    "agent_error_rate": ("Error rate", "the agent's failed executions, of its executions"),
    "agent_latency": ("Average latency", "mean time of the agent's executions"),
    "last_execution": ("Last execution", "when the agent last finished an execution"),
    "skill_executions": ("Executions", "executions of the skill in the period"),
    "skill_error_rate": ("Error rate", "the skill's failed executions, of its executions"),
    "risk_level": ("Risk", "the skill's configured risk level, R0 (auto) to R3 (human)"),
    "decisions_total": ("Decisions", "routing decisions in the period: one per pull request "
                                     "head and decision, however often it was delivered"),
    "pending_now": ("Pending now", "decisions waiting for an approval at the end of the "
                                   "period (a wait is pending, never a failure)"),
    "oldest_pending": ("Oldest pending", "how long the longest-waiting decision has waited"),
    "median_time_to_approve": ("Median time to approve",
                               "half of the granted approvals came within this time of the "
                               "request"),
}


class Fmt:
    """How numbers read in reports; ``None`` (nothing to divide by) reads as an em dash.

    One unit and one precision per kind of figure, so figures side by side compare:
    percentages with one decimal, latencies in whole milliseconds, times to the minute.
    """

    @staticmethod
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}%"

    @staticmethod
    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f} ms"

    @staticmethod
    def num(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f}"

    @staticmethod
    def secs(value: float | None) -> str:
        if value is None:
            return "—"
        seconds = int(round(value))
        if seconds < 90:
            return f"{seconds}s"
        minutes = round(seconds / 60)
        if minutes < 90:
            return f"{minutes}m"
        if minutes < 2880:
            return f"{minutes // 60}h {minutes % 60}m"
        return f"{minutes // 1440}d {minutes % 1440 // 60}h"

    @staticmethod
    def when(value: str | None) -> str:
        return shown_time(value) if value else "—"

    @staticmethod
    def label(key: str) -> str:
        return DEFINITIONS[key][0]

    @staticmethod
    def define(key: str) -> str:
        return DEFINITIONS[key][1]


def health(view: dict[str, Any], alerts: Sequence[Alert], unhealthy: list[str]) -> str:
    """One plain sentence on how things are, for the first line of the executive view."""
    s = view["summary"]
    total = s["total_executions"] or 0
    if not total:
        return "No executions were recorded in this period, so there is nothing to judge yet."
    worst = max((a.severity for a in alerts), key=lambda x: x == "critical", default=None)
    verdict = ("Needs attention now" if worst == "critical" else
               "Mostly healthy, with warnings" if alerts or unhealthy else "Healthy")
    parts = [f"{verdict}: {Fmt.pct(s['success_rate'])} of {Fmt.num(total)} executions "
             f"succeeded"]
    parts.append(f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} firing"
                 if alerts else "no alerts firing")
    if unhealthy:
        parts.append(f"agent{'s' if len(unhealthy) > 1 else ''} {', '.join(unhealthy)} "
                     f"failing more often than allowed")
    return "; ".join(parts) + "."


def render_report(view: dict[str, Any], fmt: str = "markdown", *,
                  alerts: Sequence[Alert] = (), role: str | None = None,
                  served: bool = False, unhealthy_error_rate: float = 20.0,
                  drill: dict[str, Any] | None = None) -> str:
    """The report for ``view`` in ``fmt``; ``role`` limits markdown/HTML to one audience;
    ``drill`` (``bot.metrics.drilldown.drill``) adds the items behind a figure."""
    if fmt not in FORMATS:
        raise InputError(f'unknown report format "{fmt}"', hint=f"use one of {', '.join(FORMATS)}")
    if role is not None and role not in ROLES:
        raise InputError(f'unknown role "{role}"', hint=f"use one of {', '.join(ROLES)}")
    if fmt == "json":
        extra = {"drill": drill} if drill is not None else {}
        return json.dumps({**view, "alerts": [a.to_json() for a in alerts], **extra},
                          indent=2) + "\n"
    context = {**_context(view, alerts, role, unhealthy_error_rate), "drill": drill}
    if fmt == "html":
        return render("metrics/dashboard.html.j2", served=served, **context)
    text = render("metrics/report.md.j2", **context)
    if len(text) > COMMENT_LIMIT:
        text = text[:COMMENT_LIMIT - 200].rsplit("\n", 1)[0] + (
            "\n\n… report cut at GitHub's comment limit; run `cvf metrics report "
            "--format html` for the full one.\n")
    return text


def _context(view: dict[str, Any], alerts: Sequence[Alert], role: str | None,
             unhealthy_error_rate: float) -> dict[str, Any]:
    series = view["time_series"]
    points = series["points"]
    step = int(series["step_seconds"])
    labels = [_label(p["start"], step) for p in points]
    executions = [float(p["executions"]) for p in points]
    agents = [{"name": name, **info,
               "unhealthy": info["error_rate"] is not None
               and info["error_rate"] > unhealthy_error_rate}
              for name, info in view["agent_health"].items()]
    agents.sort(key=lambda a: (-a["load"], a["name"]))
    skills = [{"name": name, **info} for name, info in view["skills"].items()]
    skills.sort(key=lambda s: (-(s["error_rate"] or 0), -s["executions"], s["name"]))
    return {
        "view": view, "f": Fmt, "alerts": list(alerts), "definitions": DEFINITIONS,
        "health": health(view, alerts, [a["name"] for a in agents if a["unhealthy"]]),
        "roles": [role] if role else list(ROLES),
        "labels": labels, "step": step,
        "executions_chart": charts.bars(labels, executions,
                                        [float(p["errors"]) for p in points]),
        "latency_chart": charts.line(labels, [p["average_latency_ms"] for p in points]),
        "error_chart": charts.line(labels, [p["error_rate"] for p in points]),
        "risk_bars": charts.hbars([(k, float(v)) for k, v in view["risk_distribution"].items()]),
        "decision_bars": charts.hbars([(DECISION_WORDS.get(k, k), float(v)) for k, v
                                       in view["decisions"]["by_decision"].items()]),
        "decision_words": DECISION_WORDS,
        "agents": agents[:MAX_TABLE_ROWS], "agents_more": max(0, len(agents) - MAX_TABLE_ROWS),
        "skills": skills[:MAX_TABLE_ROWS], "skills_more": max(0, len(skills) - MAX_TABLE_ROWS),
        "mermaid_labels": ", ".join(json.dumps(label) for label in labels),
        "mermaid_values": ", ".join(str(int(v)) for v in executions),
        "mermaid_max": max([1, *[int(v) for v in executions]]),
    }


def _label(iso: str, step: int) -> str:
    moment = datetime.fromisoformat(iso)
    if step >= 86400:
        return moment.strftime("%m-%d")
    if step >= 6 * 3600:
        return moment.strftime("%m-%d %H")
    return moment.strftime("%H:%M")
