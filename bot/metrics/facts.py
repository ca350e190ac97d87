"""Routing decisions and approvals: the two facts that are not executions.

The CVF loop records three different things, and mixing them made the numbers lie (a
pull request waiting for approval read as a failed execution of its agent, the author
read as an agent, every event on a pull request read as one more execution):

- an **execution** (``bot.metrics.record.ExecutionMetric``): an agent ran a skill, with
  a success, an error type and a latency. Records without a ``kind`` are executions,
  so the public contract agents write is unchanged;
- a **decision** (``"kind": "decision"``): the routing gate decided what a pull request
  head needs: skill, risk level, decision, the chosen agent and its fallbacks, the
  approver role. Its id comes from the repository, pull request, head and decision, so
  any number of deliveries and re-evaluations store it once;
- an **approval** (``"kind": "approval"``): an approval was requested, granted or
  rejected, by whom and how long it took; stored when it happens, once per head, state
  and person.

A decision that waits for an approval is *pending* (an approval was requested and
nobody granted or rejected it yet), never a failure. Decisions and approvals live in
the same store as executions (one sequence, one export, one data branch) but never
enter the execution rollups.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.metrics.record import DECISIONS, RISK_LEVELS, _kind, measure, parse_time

EXECUTION, DECISION, APPROVAL = 0, 1, 2
KINDS: dict[str, int] = {"execution": EXECUTION, "decision": DECISION, "approval": APPROVAL}
KIND_NAMES: dict[int, str] = {code: name for name, code in KINDS.items()}
APPROVAL_STATES: tuple[str, ...] = ("requested", "granted", "rejected")
GATES: tuple[str, ...] = ("passed", "pending", "blocked")
NEEDS_APPROVAL = frozenset({"approval_required", "human_intervention"})
DECISION_WORDS: dict[str, str] = {"auto_execute": "auto-execute", "scope_guard": "scope guard",
                                  "approval_required": "approval required",
                                  "human_intervention": "human intervention"}
# Routing-gate records written as executions by earlier versions, and what they meant.
_OLD_PENDING = frozenset({"awaiting_approval", "awaiting_human_intervention"})


def kind_of(obj: Any) -> int | str:
    """The record kind code of a decoded record, or what is wrong with its ``kind``."""
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind is None:
        return EXECUTION
    code = KINDS.get(kind) if isinstance(kind, str) else None
    if code is None:
        return f"`kind` must be one of {', '.join(KINDS)} (or left out for an execution), " \
               f"got {json.dumps(kind)}"
    return code


def check_any(obj: Any) -> str | None:
    """The first thing wrong with a record of any kind, in words, or ``None``."""
    code = kind_of(obj)
    if isinstance(code, str):
        return code
    if code == EXECUTION:
        found = measure(obj)
        return found if isinstance(found, str) else None
    found_fact = check_fact(obj, code)
    return found_fact if isinstance(found_fact, str) else None


def check_fact(obj: dict[str, Any], kind: int) -> tuple[float, str | None] | str:
    """Validate a decision or approval; ``(epoch seconds, head sha or None)`` or a problem."""
    get = obj.get
    rid = get("id")
    if rid is not None and (not isinstance(rid, str) or not rid.strip()):
        return "`id` must be a non-empty string (or left out to have one generated)"
    stamp = get("timestamp")
    moment = parse_time(stamp)
    if moment is None:
        return ('`timestamp` must be ISO 8601 with a zone, like "2026-01-31T12:00:00Z", '
                f"got {json.dumps(stamp)}")
    for name in ("repository", "head_sha", "url", "source", "skill"):
        value = get(name)
        if value is not None and not isinstance(value, str):
            return f"`{name}` must be a string, got {_kind(value)}"
    number = get("pull_request")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        return f"`pull_request` must be a pull request number, got {json.dumps(number)}"
    level = get("risk_level")
    if level is not None and level not in RISK_LEVELS:
        return f"`risk_level` must be one of {', '.join(RISK_LEVELS)}, got {json.dumps(level)}"
    problem = _check_decision(obj) if kind == DECISION else _check_approval(obj)
    if problem:
        return problem
    head = get("head_sha")
    return moment.timestamp(), head or None


def _check_decision(obj: dict[str, Any]) -> str | None:
    get = obj.get
    skill = get("skill")
    if not isinstance(skill, str) or not skill.strip():
        return f"`skill` must be a non-empty string, got {json.dumps(skill)}"
    if get("risk_level") is None:
        return f"`risk_level` must be one of {', '.join(RISK_LEVELS)}, got null"
    if get("decision") not in DECISIONS:
        return (f"`decision` must be one of {', '.join(DECISIONS)}, "
                f"got {json.dumps(get('decision'))}")
    agent = get("agent")
    if agent is not None and (not isinstance(agent, str) or not agent.strip()):
        return f"`agent` must be an agent id or null (no agent chosen), got {json.dumps(agent)}"
    for name in ("fallbacks", "approvers"):
        value = get(name)
        if value is not None and (not isinstance(value, list)
                                  or not all(isinstance(v, str) for v in value)):
            return f"`{name}` must be a list of strings, got {json.dumps(value)}"
    role = get("approval_role")
    if role is not None and not isinstance(role, str):
        return f"`approval_role` must be a role name or null, got {json.dumps(role)}"
    gate = get("gate")
    if gate is not None and gate not in GATES:
        return f"`gate` must be one of {', '.join(GATES)}, got {json.dumps(gate)}"
    return None


def _check_approval(obj: dict[str, Any]) -> str | None:
    get = obj.get
    state = get("state")
    if state not in APPROVAL_STATES:
        return f"`state` must be one of {', '.join(APPROVAL_STATES)}, got {json.dumps(state)}"
    for name in ("by", "role"):
        value = get(name)
        if value is not None and not isinstance(value, str):
            return f"`{name}` must be a string or null, got {json.dumps(value)}"
    for name in ("requested_at", "decided_at"):
        value = get(name)
        if value is not None and parse_time(value) is None:
            return f"`{name}` must be ISO 8601 with a zone or null, got {json.dumps(value)}"
    return None


# -- building records ------------------------------------------------------------------
def decision_key(repo: str, number: int | None, head_sha: str, decision: str) -> str:
    return f"{repo}#{number}@{head_sha}:{decision}"


def decision_record(*, repo: str, number: int | None, head_sha: str, url: str | None,
                    skill: str, risk_level: str, decision: str, agent: str | None,
                    fallbacks: Sequence[str], approval_role: str | None,
                    approvers: Sequence[str], gate: str, timestamp: datetime,
                    source: str = "cvf-routing", key: str | None = None) -> dict[str, Any]:
    """A routing decision, one per pull request head and decision (the id says so);
    ``key`` overrides what makes it unique (a decision about no pull request)."""
    key = key or decision_key(repo, number, head_sha, decision)
    return {"kind": "decision", "id": "decision-" + _digest(key), "key": key,
            "timestamp": _iso(timestamp), "repository": repo, "pull_request": number,
            "head_sha": head_sha or None, "url": url, "skill": skill, "risk_level": risk_level,
            "decision": decision, "agent": agent, "fallbacks": list(fallbacks),
            "approval_role": approval_role, "approvers": list(approvers), "gate": gate,
            "source": source}


def approval_record(*, state: str, repo: str, number: int | None, head_sha: str | None,
                    url: str | None, by: str | None, role: str | None,
                    requested_at: datetime | str | None, decided_at: datetime | str | None,
                    timestamp: datetime, skill: str | None = None,
                    risk_level: str | None = None, source: str = "cvf-routing"
                    ) -> dict[str, Any]:
    """An approval requested, granted or rejected; once per head, state and person."""
    key = f"{repo}#{number}@{head_sha}:{state}:{(by or '').lower()}"
    return {"kind": "approval", "id": "approval-" + _digest(key), "timestamp": _iso(timestamp),
            "repository": repo, "pull_request": number, "head_sha": head_sha, "url": url,
            "state": state, "by": by, "role": role, "skill": skill, "risk_level": risk_level,
            "requested_at": _iso(requested_at), "decided_at": _iso(decided_at),
            "source": source}


def seconds_to_decide(approval: dict[str, Any]) -> float | None:
    start, end = parse_time(approval.get("requested_at")), parse_time(approval.get("decided_at"))
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def key_of(decision: dict[str, Any]) -> str:
    """What makes two decision records the same decision (older stores lack ``key``)."""
    key = decision.get("key")
    if isinstance(key, str):
        return key
    return decision_key(str(decision.get("repository") or ""), decision.get("pull_request"),
                        str(decision.get("head_sha") or ""), str(decision.get("decision")))


# -- records of earlier versions ---------------------------------------------------------
def is_old_gate_record(rid: str) -> bool:
    """Ids earlier versions gave the routing gate's and the reviews' "executions"."""
    return rid.startswith(("routing-", "gh-review-"))


def reclassify(old: dict[str, Any]) -> list[dict[str, Any]]:
    """What an earlier version's routing-gate or review "execution" really was.

    The first record keeps the old id (and the old record whole, under
    ``migrated_from``), so the migration loses nothing; a routing record whose approval
    was granted also gives the approval it witnessed."""
    rid = str(old["id"])
    moment = parse_time(old.get("timestamp"))
    assert moment is not None  # a stored record was valid
    approval = old.get("approval") or {}
    if rid.startswith("gh-review-"):
        github = old.get("github") or {}
        number = github.get("pull") if isinstance(github.get("pull"), int) else None
        state = "granted" if approval.get("granted") else "rejected"
        record = approval_record(state=state, repo=str(old.get("repository") or ""),
                                 number=number, head_sha=None, url=None,
                                 by=approval.get("approver"), role=None,
                                 requested_at=approval.get("requested_at"),
                                 decided_at=approval.get("decided_at") or old["timestamp"],
                                 timestamp=moment, risk_level=old.get("risk_level"),
                                 source=str(old.get("source") or "github-reviews"))
        return [{**record, "id": rid, "migrated_from": old}]
    repo = str(old.get("repository") or "")
    number = old.get("pull_request") if isinstance(old.get("pull_request"), int) else None
    head = str(old.get("head_sha") or "")
    needs = old.get("decision") in NEEDS_APPROVAL
    if old.get("success"):
        gate = "passed"
    elif old.get("error_type") in _OLD_PENDING or needs:
        gate = "pending"
    else:
        gate = "blocked"
    agent = old.get("agent")
    decision = {"kind": "decision", "id": rid,
                "key": decision_key(repo, number, head, str(old["decision"])),
                "timestamp": old["timestamp"], "repository": repo, "pull_request": number,
                "head_sha": head or None, "url": None, "skill": old["skill"],
                "risk_level": old["risk_level"], "decision": old["decision"],
                "agent": None if agent in (None, "", "unassigned") else agent,
                "fallbacks": [], "approval_role": None, "approvers": [], "gate": gate,
                "source": old.get("source") or "cvf-routing", "migrated_from": old}
    out = [decision]
    if needs:
        out.append(approval_record(
            state="requested", repo=repo, number=number, head_sha=head or None, url=None,
            by=None, role=None, requested_at=approval.get("requested_at") or old["timestamp"],
            decided_at=None, timestamp=moment, skill=old["skill"],
            risk_level=old["risk_level"], source=str(old.get("source") or "cvf-routing")))
    if needs and approval.get("granted"):
        out.append(approval_record(
            state="granted", repo=repo, number=number, head_sha=head or None, url=None,
            by=approval.get("approver"), role=None, requested_at=approval.get("requested_at"),
            decided_at=approval.get("decided_at") or old["timestamp"], timestamp=moment,
            skill=old["skill"], risk_level=old["risk_level"],
            source=str(old.get("source") or "cvf-routing")))
    return out


def as_lines(records: Iterable[dict[str, Any]]) -> list[str]:
    return [json.dumps(r, separators=(",", ":")) for r in records]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat().replace("+00:00", "Z")
