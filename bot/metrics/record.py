"""``ExecutionMetric``: one skill execution as agents report it.

The JSON form is a public contract (agents write it; JSONL files and ``POST
/api/executions`` carry it), so field names never change and unknown fields are kept:
a newer agent may send more than this version knows, and export gives it back intact.

Validation is written by hand rather than with a JSON Schema validator because it
sits on the ingest hot path (hundreds of thousands of records a second) and because
its messages must name the field and the fix in words.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.errors import InputError

RISK_LEVELS: tuple[str, ...] = ("R0", "R1", "R2", "R3")
DECISIONS: tuple[str, ...] = ("auto_execute", "scope_guard", "approval_required",
                              "human_intervention")
KNOWN_FIELDS = frozenset({"id", "timestamp", "skill", "agent", "risk_level", "decision",
                          "success", "error_type", "latency_ms", "approval", "audit",
                          "source"})
MAX_PROBLEMS = 10


class RecordError(InputError):
    """One or more records are invalid; ``problems`` lists each as ``where: reason``."""

    def __init__(self, problems: list[str]):
        super().__init__(problems[0] if problems else "invalid record",
                         hint="fix the listed records; nothing was stored")
        self.problems = [*problems, "nothing was stored: fix the records above and retry"]


@dataclass(frozen=True)
class Approval:
    required: bool = False
    granted: bool = False
    rejected: bool = False
    approver: str | None = None
    requested_at: datetime | None = None
    decided_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"required": self.required, "granted": self.granted, "rejected": self.rejected,
                "approver": self.approver, "requested_at": _iso(self.requested_at),
                "decided_at": _iso(self.decided_at)}

    @property
    def seconds_to_decide(self) -> float | None:
        if self.requested_at is None or self.decided_at is None:
            return None
        return max(0.0, (self.decided_at - self.requested_at).total_seconds())


@dataclass(frozen=True)
class Audit:
    report_posted: bool = False
    approval_recorded: bool = False


@dataclass(frozen=True)
class ExecutionMetric:
    id: str
    timestamp: datetime
    skill: str
    agent: str
    risk_level: str
    decision: str
    success: bool
    latency_ms: float
    error_type: str | None = None
    approval: Approval | None = None
    audit: Audit = field(default_factory=Audit)
    source: str = "unknown"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def audit_complete(self) -> bool:
        """Report posted, and the approval recorded when one was required."""
        needs_approval = self.approval is not None and self.approval.required
        return self.audit.report_posted and (self.audit.approval_recorded or not needs_approval)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "timestamp": _iso(self.timestamp), "skill": self.skill,
            "agent": self.agent, "risk_level": self.risk_level, "decision": self.decision,
            "success": self.success, "error_type": self.error_type,
            "latency_ms": self.latency_ms,
            "approval": self.approval.to_json() if self.approval else None,
            "audit": {"report_posted": self.audit.report_posted,
                      "approval_recorded": self.audit.approval_recorded},
            "source": self.source,
        }
        for key, value in self.extra.items():
            data.setdefault(key, value)
        return data

    @classmethod
    def from_json(cls, obj: Any, *, where: str = "record",
                  default_source: str = "unknown") -> ExecutionMetric:
        """Validate one decoded record; raise ``InputError`` naming ``where`` and the field."""
        problem = check(obj)
        if problem:
            raise InputError(problem, where=where)
        return _build(obj, default_source)


def check(obj: Any) -> str | None:
    """The first thing wrong with a decoded record, in words, or ``None`` when it is valid."""
    result = measure(obj)
    return result if isinstance(result, str) else None


# What ``measure`` gives for a valid record, in this order: agent, skill, timestamp
# (epoch s), risk level index, decision index, success (0/1), latency ms, audit complete
# (0/1), approval needed, granted, rejected (0/1 each), seconds from request to grant
# (NaN when unknown).
Measures = tuple[str, str, float, int, int, int, float, int, int, int, int, float]
RISK_INDEX = {level: i for i, level in enumerate(RISK_LEVELS)}
DECISION_INDEX = {decision: i for i, decision in enumerate(DECISIONS)}


def measure(obj: Any) -> Measures | str:
    """Validate a decoded record and give the numbers it adds to the rollups, or the first
    thing wrong with it in words.

    One pass does both because this is the ingest hot path: every field is looked at
    once, and timestamps are parsed once."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {_kind(obj)}"
    get = obj.get
    rid = get("id")
    if rid is not None and (not isinstance(rid, str) or not rid.strip()):
        return "`id` must be a non-empty string (or left out to have one generated)"
    stamp = get("timestamp")
    if stamp is None:
        return 'missing `timestamp` (expected ISO 8601 with a zone, like "2026-01-31T12:00:00Z")'
    moment = parse_time(stamp)
    if moment is None:
        return ('`timestamp` must be ISO 8601 with a zone, like "2026-01-31T12:00:00Z", '
                f"got {json.dumps(stamp)}")
    skill = get("skill")
    if not isinstance(skill, str) or not skill.strip():
        return f"`skill` must be a non-empty string, got {json.dumps(skill)}"
    agent = get("agent")
    if not isinstance(agent, str) or not agent.strip():
        return f"`agent` must be a non-empty string, got {json.dumps(agent)}"
    level = get("risk_level")
    risk = RISK_INDEX.get(level) if isinstance(level, str) else None
    if risk is None:
        return f"`risk_level` must be one of {', '.join(RISK_LEVELS)}, got {json.dumps(level)}"
    decided = get("decision")
    decision = DECISION_INDEX.get(decided) if isinstance(decided, str) else None
    if decision is None:
        return f"`decision` must be one of {', '.join(DECISIONS)}, got {json.dumps(decided)}"
    success = get("success")
    if success is not True and success is not False:
        return f"`success` must be true or false, got {json.dumps(success)}"
    error_type = get("error_type")
    if error_type is not None and not isinstance(error_type, str):
        return f"`error_type` must be a string or null, got {json.dumps(error_type)}"
    latency = _milliseconds(get("latency_ms"))
    if latency is None:
        return ("`latency_ms` must be a number of milliseconds >= 0, "
                f"got {json.dumps(get('latency_ms'))}")
    source = get("source")
    if source is not None and not isinstance(source, str):
        return f"`source` must be a string, got {json.dumps(source)}"
    needed = granted = rejected = 0
    approve_seconds = math.nan
    approval = get("approval")
    if approval is not None:
        times = _approval_times(approval)
        if isinstance(times, str):
            return times
        needed = 1 if approval.get("required") else 0
        if approval.get("granted"):
            granted = 1
            start, end = times
            if start is not None and end is not None:
                approve_seconds = max(0.0, (end - start).total_seconds())
        elif approval.get("rejected"):
            rejected = 1
    audit = get("audit")
    posted = recorded = False
    if audit is not None:
        if not isinstance(audit, dict):
            return f"`audit` must be an object, got {_kind(audit)}"
        posted = audit.get("report_posted", False)
        recorded = audit.get("approval_recorded", False)
        for name, value in (("report_posted", posted), ("approval_recorded", recorded)):
            if value is not True and value is not False:
                return f"`audit.{name}` must be true or false, got {json.dumps(value)}"
    audit_ok = 1 if posted and (recorded or not needed) else 0
    return (agent, skill, moment.timestamp(), risk, decision, 1 if success else 0, latency,
            audit_ok, needed, granted, rejected, approve_seconds)


def _milliseconds(value: Any) -> float | None:
    """A latency as a float, or ``None`` unless it is a finite number >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if 0 <= number < math.inf else None


def _approval_times(approval: Any) -> tuple[datetime | None, datetime | None] | str:
    """``(requested_at, decided_at)`` of a valid approval object, or what is wrong with it."""
    if not isinstance(approval, dict):
        return f"`approval` must be an object or null, got {_kind(approval)}"
    get = approval.get
    for name in ("required", "granted", "rejected"):
        value = get(name, False)
        if value is not True and value is not False:
            return f"`approval.{name}` must be true or false, got {json.dumps(value)}"
    if get("granted") and get("rejected"):
        return "`approval` cannot be both granted and rejected"
    approver = get("approver")
    if approver is not None and not isinstance(approver, str):
        return f"`approval.approver` must be a login string or null, got {json.dumps(approver)}"
    requested, decided = get("requested_at"), get("decided_at")
    start = None if requested is None else parse_time(requested)
    if requested is not None and start is None:
        return ("`approval.requested_at` must be ISO 8601 with a zone or null, "
                f"got {json.dumps(requested)}")
    end = None if decided is None else parse_time(decided)
    if decided is not None and end is None:
        return ("`approval.decided_at` must be ISO 8601 with a zone or null, "
                f"got {json.dumps(decided)}")
    return start, end


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from ISO 8601 text with a zone; ``None`` if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def content_id(line: str) -> str:
    """An id for a record that came without one: stable, so importing a file twice adds nothing."""
    return "c-" + hashlib.blake2b(line.encode("utf-8"), digest_size=12).hexdigest()


def _build(obj: dict[str, Any], default_source: str) -> ExecutionMetric:
    approval = obj.get("approval")
    audit = obj.get("audit") or {}
    rid = obj.get("id") or content_id(json.dumps(obj, sort_keys=True, default=str))
    return ExecutionMetric(
        id=rid, timestamp=_aware(obj["timestamp"]), skill=obj["skill"], agent=obj["agent"],
        risk_level=obj["risk_level"], decision=obj["decision"], success=obj["success"],
        latency_ms=float(obj["latency_ms"]), error_type=obj.get("error_type"),
        approval=None if approval is None else Approval(
            required=bool(approval.get("required", False)),
            granted=bool(approval.get("granted", False)),
            rejected=bool(approval.get("rejected", False)),
            approver=approval.get("approver"),
            requested_at=parse_time(approval.get("requested_at")),
            decided_at=parse_time(approval.get("decided_at"))),
        audit=Audit(report_posted=bool(audit.get("report_posted", False)),
                    approval_recorded=bool(audit.get("approval_recorded", False))),
        source=obj.get("source") or default_source,
        extra={k: v for k, v in obj.items() if k not in KNOWN_FIELDS},
    )


def _aware(value: str) -> datetime:
    parsed = parse_time(value)
    assert parsed is not None  # checked by check()
    return parsed


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "a string"


def utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)
