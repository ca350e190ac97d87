"""Governance statistics from the RFC files themselves: what was decided, how fast, how.

Computed only from front matter (no clock, no GitHub), so ``cvf rfc stats`` and the
index agree with each other and the index can be checked byte for byte in CI.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from bot.durations import parse_duration
from bot.errors import CvfError
from bot.rfc.document import STATUSES, RfcDocument
from bot.rfc.tally import approval_rate

DECIDED = ("accepted", "rejected")
RECENT = 10


@dataclass(frozen=True)
class DecisionRow:
    number: int
    title: str
    type: str
    status: str
    date: str
    days_open: float | None
    approval_rate: float | None
    deciders: tuple[str, ...]


@dataclass
class GovernanceStats:
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    decided: int = 0
    accepted: int = 0
    rejected: int = 0
    acceptance_rate: float | None = None
    approval_rate: float | None = None  # all binding votes of decided RFCs together
    approval_rate_by_type: dict[str, float | None] = field(default_factory=dict)
    median_days_to_decision: float | None = None
    recent: list[DecisionRow] = field(default_factory=list)

    # For templates (the index includes templates/rfc/index-stats.md.j2 with ``stats``).
    @property
    def statuses(self) -> list[str]:
        return [s for s in STATUSES if s in self.by_status]

    @staticmethod
    def percent(value: float | None) -> str:
        return percent(value)

    @staticmethod
    def days(value: float | None) -> str:
        return days(value)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recent"] = [asdict(row) | {"deciders": list(row.deciders)} for row in self.recent]
        return data


def _period(comment_period: Mapping[str, str], rfc_type: str | None) -> timedelta:
    raw = comment_period.get(rfc_type or "") or comment_period.get("default") or "14d"
    try:
        return parse_duration(raw)
    except CvfError:
        return timedelta(days=14)


def opened_on(doc: RfcDocument, comment_period: Mapping[str, str]) -> date | None:
    """When the comment period began: its recorded end minus the configured length
    (an extended period therefore counts from its last extension), else ``created``."""
    ends = doc.comment_period_ends
    if ends is not None:
        return (ends - _period(comment_period, doc.type)).date()
    return doc.created


def compute_stats(docs: Sequence[RfcDocument], rfc_config: Mapping[str, Any]) -> GovernanceStats:
    comment_period = rfc_config.get("comment_period") or {}
    types = list(rfc_config.get("types") or [])
    out = GovernanceStats(total=len(docs))
    for status in STATUSES:
        count = sum(1 for d in docs if d.status == status)
        if count:
            out.by_status[status] = count
    for doc in docs:
        key = doc.type or "unknown"
        bucket = out.by_type.setdefault(key, {})
        bucket[doc.status or "unknown"] = bucket.get(doc.status or "unknown", 0) + 1
    ordered = [t for t in types if t in out.by_type] + sorted(set(out.by_type) - set(types))
    out.by_type = {t: out.by_type[t] for t in ordered}
    rows: list[DecisionRow] = []
    totals: dict[str, int] = {}
    per_type: dict[str, dict[str, int]] = {}
    durations: list[float] = []
    for doc in docs:
        if doc.status not in DECIDED:
            continue
        decision = doc.decision
        when = decision.date if decision else None
        started = opened_on(doc, comment_period)
        days = (when - started).days if when and started and when >= started else None
        if days is not None:
            durations.append(float(days))
        tally = decision.tally if decision else {}
        for option, count in tally.items():
            totals[option] = totals.get(option, 0) + count
            bucket = per_type.setdefault(doc.type or "unknown", {})
            bucket[option] = bucket.get(option, 0) + count
        rows.append(DecisionRow(number=doc.number or 0, title=doc.title, type=doc.type or "",
                                status=doc.status or "", date=when.isoformat() if when else "",
                                days_open=float(days) if days is not None else None,
                                approval_rate=approval_rate(tally) if tally else None,
                                deciders=decision.deciders if decision else ()))
    out.decided = len(rows)
    out.accepted = sum(1 for r in rows if r.status == "accepted")
    out.rejected = sum(1 for r in rows if r.status == "rejected")
    out.acceptance_rate = out.accepted / out.decided if out.decided else None
    out.approval_rate = approval_rate(totals)
    out.approval_rate_by_type = {t: approval_rate(c) for t, c in sorted(per_type.items())}
    out.median_days_to_decision = statistics.median(durations) if durations else None
    rows.sort(key=lambda r: (r.date, r.number), reverse=True)
    out.recent = rows[:RECENT]
    return out


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def days(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g} days"
