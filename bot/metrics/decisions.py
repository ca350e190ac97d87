"""The decisions and approvals sections of the dashboard view, from their raw records.

Decisions and approvals are few (one per pull request head and event), so they are
read raw (``MetricsStore.facts``) rather than rolled up. Both sections look back
``LOOKBACK`` before the window too: a decision made last week may still be pending
now, and an approval granted today may answer a request made yesterday.

A decision needing an approval (R2, R3) is *pending* until an approval of its pull
request head is granted or rejected; a newer decision on the same pull request (a new
head, a changed label) replaces it. Pending is never a failure: it is not counted in
any execution figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.metrics.facts import DECISION_WORDS, NEEDS_APPROVAL, key_of, seconds_to_decide
from bot.metrics.record import DECISIONS, RISK_LEVELS, parse_time
from bot.metrics.store import DAY, MetricsStore

LOOKBACK = 30 * DAY
DECIDED = ("granted", "rejected")


@dataclass
class Facts:
    """The decisions and approvals of a window and its look-back, grouped once."""

    since: float
    until: float
    decisions: list[dict[str, Any]]  # one per decision key (its first record), oldest first
    approvals: list[dict[str, Any]]

    def __post_init__(self) -> None:
        # Indexes by pull request number, so a state costs a look at one pull request.
        self._answers: dict[Any, list[dict[str, Any]]] = {}
        self._requests: dict[tuple[Any, Any], float] = {}
        for a in self.approvals:
            if a.get("state") in DECIDED:
                self._answers.setdefault(a.get("pull_request"), []).append(a)
            elif a.get("state") == "requested":
                self._requests.setdefault((a.get("pull_request"), a.get("head_sha")),
                                          _epoch(a))
        self._latest: dict[tuple[Any, Any], dict[str, Any]] = {}
        for d in self.decisions:
            pull = (d.get("repository"), d.get("pull_request"))
            if pull not in self._latest or _epoch(d) >= _epoch(self._latest[pull]):
                self._latest[pull] = d

    @classmethod
    def read(cls, store: MetricsStore, since: float, until: float) -> Facts:
        seen: dict[str, dict[str, Any]] = {}
        for record in store.facts("decision", since - LOOKBACK, until):
            seen.setdefault(key_of(record), record)
        return cls(since, until, list(seen.values()),
                   store.facts("approval", since - LOOKBACK, until))

    def in_window(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if self.since <= _epoch(r) < self.until]

    def answers(self, decision: dict[str, Any]) -> list[dict[str, Any]]:
        """Granted or rejected approvals of the decision's pull request head (a record
        from an older version may lack the head: then any later one of the pull request)."""
        pr, head, repo = decision.get("pull_request"), decision.get("head_sha"), \
            decision.get("repository")
        return [a for a in self._answers.get(pr, ())
                if (a.get("repository") or repo) == repo
                and (a.get("head_sha") == head
                     or (not a.get("head_sha") and _epoch(a) >= _epoch(decision)))]

    def state_of(self, decision: dict[str, Any]) -> str:
        """``approved``, ``rejected``, ``pending``, ``superseded`` (a newer decision on the
        pull request replaced it while it waited), or the gate (``passed``/``blocked``)."""
        if decision.get("decision") not in NEEDS_APPROVAL:
            return str(decision.get("gate") or "passed")
        answers = self.answers(decision)
        if answers:
            return "approved" if answers[-1]["state"] == "granted" else "rejected"
        if self.latest_of_pull(decision) is not decision:
            return "superseded"
        return "pending"

    def latest_of_pull(self, decision: dict[str, Any]) -> dict[str, Any]:
        pull = (decision.get("repository"), decision.get("pull_request"))
        if pull[1] is None:
            return decision
        return self._latest.get(pull, decision)

    def requested_at(self, approval: dict[str, Any]) -> float | None:
        """When the approval was asked for: its own ``requested_at``, else the request
        recorded for the same head."""
        seconds = seconds_to_decide(approval)
        if seconds is not None:
            return _epoch_of(approval.get("decided_at")) - seconds
        return self._requests.get((approval.get("pull_request"), approval.get("head_sha")))

    def seconds_to_decide(self, approval: dict[str, Any]) -> float | None:
        start = self.requested_at(approval)
        end = _epoch_of(approval.get("decided_at")) if approval.get("decided_at") else \
            _epoch(approval)
        return None if start is None else max(0.0, end - start)


def decisions_section(facts: Facts) -> dict[str, Any]:
    """Counts by decision and by risk level of the window's decisions, and what is
    pending at the end of the window (wherever it was decided)."""
    window = facts.in_window(facts.decisions)
    by_decision = dict.fromkeys(DECISIONS, 0)
    by_risk = dict.fromkeys(RISK_LEVELS, 0)
    for record in window:
        by_decision[record["decision"]] = by_decision.get(record["decision"], 0) + 1
        by_risk[record["risk_level"]] = by_risk.get(record["risk_level"], 0) + 1
    states: dict[str, int] = {}
    for record in window:
        state = facts.state_of(record)
        states[state] = states.get(state, 0) + 1
    pending = [d for d in facts.decisions if facts.state_of(d) == "pending"]
    oldest = min(pending, key=_epoch, default=None)
    return {
        "total": len(window),
        "by_decision": by_decision,
        "by_risk": by_risk,
        "by_state": dict(sorted(states.items())),
        "pending_now": len(pending),
        "oldest_pending": None if oldest is None else {
            **_subject(oldest), "risk_level": oldest["risk_level"],
            "decision": oldest["decision"], "approval_role": oldest.get("approval_role"),
            "since": oldest["timestamp"],
            "waiting_seconds": round(max(0.0, facts.until - _epoch(oldest)), 1)},
    }


def approval_counts(facts: Facts) -> tuple[int, int, int, int, list[float]]:
    """``(requested, granted, rejected, still pending, seconds to grant)`` of the
    window's approval records."""
    window = facts.in_window(facts.approvals)
    requested = [a for a in window if a.get("state") == "requested"]
    granted = [a for a in window if a.get("state") == "granted"]
    rejected = [a for a in window if a.get("state") == "rejected"]
    answered = {(a.get("repository"), a.get("pull_request"), a.get("head_sha"))
                for a in facts.approvals if a.get("state") in DECIDED}
    pending = sum(1 for a in requested
                  if (a.get("repository"), a.get("pull_request"), a.get("head_sha"))
                  not in answered)
    seconds = [s for s in (facts.seconds_to_decide(a) for a in granted) if s is not None]
    return len(requested), len(granted), len(rejected), pending, seconds


def decision_row(facts: Facts, record: dict[str, Any]) -> dict[str, Any]:
    """One decision as a drill-down row."""
    state = facts.state_of(record)
    return {**_subject(record), "timestamp": record["timestamp"], "skill": record["skill"],
            "risk_level": record["risk_level"], "decision": record["decision"],
            "decision_words": DECISION_WORDS.get(record["decision"], record["decision"]),
            "agent": record.get("agent"), "approval_role": record.get("approval_role"),
            "approvers": record.get("approvers") or [], "state": state,
            "waiting_seconds": round(max(0.0, facts.until - _epoch(record)), 1)
            if state == "pending" else None}


def approval_row(facts: Facts, record: dict[str, Any]) -> dict[str, Any]:
    seconds = facts.seconds_to_decide(record) if record.get("state") in DECIDED else None
    return {**_subject(record), "timestamp": record["timestamp"], "state": record["state"],
            "by": record.get("by"), "role": record.get("role"),
            "risk_level": record.get("risk_level"), "skill": record.get("skill"),
            "seconds_to_decide": None if seconds is None else round(seconds, 1)}


def _subject(record: dict[str, Any]) -> dict[str, Any]:
    head = record.get("head_sha") or ""
    return {"repository": record.get("repository"), "pull_request": record.get("pull_request"),
            "head_sha": head[:7] or None, "url": record.get("url") or _pull_url(record)}


def _pull_url(record: dict[str, Any]) -> str | None:
    repo, number = record.get("repository"), record.get("pull_request")
    if not repo or number is None:
        return None
    return f"https://github.com/{repo}/pull/{number}"


def _epoch(record: dict[str, Any]) -> float:
    return _epoch_of(record.get("timestamp"))


def _epoch_of(text: Any) -> float:
    moment = parse_time(text)
    return moment.timestamp() if moment else 0.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
