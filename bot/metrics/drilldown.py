"""Drill-down: the items behind a figure, one row each with its link, and the filter
that selected them (as github/issue-metrics prints the search query it ran).

``cvf metrics report --drill decisions --filter "state:pending"`` and
``/dashboard?drill=decisions&filter=state:pending`` list, say, every pull request
head still waiting for an approval, newest first, each linked to its pull request.
The filter is a few ``key:value`` words (all must match, case does not matter); the
report prints the whole query, window included, so the list can be reproduced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from bot.errors import InputError
from bot.metrics.decisions import Facts, approval_row, decision_row, iso
from bot.metrics.store import MetricsStore

DRILLS = ("decisions", "approvals", "executions")
MAX_ROWS = 100
# The keys each kind can be filtered on, and the row field each reads.
FILTER_KEYS: dict[str, dict[str, str]] = {
    "decisions": {"skill": "skill", "risk": "risk_level", "decision": "decision",
                  "agent": "agent", "state": "state", "pr": "pull_request",
                  "repo": "repository", "role": "approval_role"},
    "approvals": {"skill": "skill", "risk": "risk_level", "state": "state", "by": "by",
                  "role": "role", "pr": "pull_request", "repo": "repository"},
    "executions": {"skill": "skill", "risk": "risk_level", "agent": "agent",
                   "success": "success", "error": "error_type", "source": "source",
                   "pr": "pull_request", "repo": "repository"},
}


def parse_filter(kind: str, text: str | None) -> list[tuple[str, str]]:
    """``key:value`` words as ``(field, value)`` pairs; a clear error for anything else."""
    if kind not in DRILLS:
        raise InputError(f'unknown drill-down "{kind}"', hint=f"use one of {', '.join(DRILLS)}")
    keys = FILTER_KEYS[kind]
    out = []
    for word in (text or "").split():
        key, sep, value = word.partition(":")
        if not sep or not value:
            raise InputError(f'filter word "{word}" is not key:value',
                             hint=f"e.g. {next(iter(keys))}:NAME; keys for {kind}: "
                                  f"{', '.join(keys)}")
        if key.lower() not in keys:
            raise InputError(f'cannot filter {kind} on "{key}"',
                             hint=f"keys for {kind}: {', '.join(keys)}")
        out.append((keys[key.lower()], value.lower()))
    return out


def drill(store: MetricsStore, since: int, until: int, kind: str,
          filter_text: str | None = None, *, limit: int = MAX_ROWS) -> dict[str, Any]:
    """The items of ``kind`` in ``[since, until)`` matching the filter, newest first."""
    wanted = parse_filter(kind, filter_text)
    query = " ".join([f"kind:{kind}", *(filter_text or "").split(),
                      f"timestamp:{iso(since)}..{iso(until)}"])
    if kind == "executions":
        rows = _matching((_execution_row(r) for r in store.recent_executions(since, until)),
                         wanted)
        items: list[dict[str, Any]] = []
        for row in rows:
            if len(items) == limit:
                return {"kind": kind, "query": query, "items": items, "more": True,
                        "matched": None}
            items.append(row)
        return {"kind": kind, "query": query, "items": items, "more": False,
                "matched": len(items)}
    facts = Facts.read(store, since, until)
    make: Callable[[Facts, dict[str, Any]], dict[str, Any]] = \
        decision_row if kind == "decisions" else approval_row
    source = facts.decisions if kind == "decisions" else facts.approvals
    if kind == "decisions" and ("state", "pending") in wanted:
        chosen = source  # pending now, wherever in the look-back it was decided
    else:
        chosen = facts.in_window(source)
    matched = list(_matching((make(facts, r) for r in reversed(chosen)), wanted))
    return {"kind": kind, "query": query, "items": matched[:limit],
            "more": len(matched) > limit, "matched": len(matched)}


def _matching(rows: Iterable[dict[str, Any]],
              wanted: list[tuple[str, str]]) -> Iterable[dict[str, Any]]:
    for row in rows:
        if all(_text(row.get(field)) == value for field, value in wanted):
            yield row


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value).lower()


def _execution_row(record: dict[str, Any]) -> dict[str, Any]:
    github = record.get("github")
    url = record.get("url") or (github.get("html_url") if isinstance(github, dict) else None)
    return {"id": record.get("id"), "url": url if isinstance(url, str) else None,
            "timestamp": record.get("timestamp"), "agent": record.get("agent"),
            "skill": record.get("skill"), "risk_level": record.get("risk_level"),
            "success": record.get("success"), "error_type": record.get("error_type"),
            "latency_ms": record.get("latency_ms"), "source": record.get("source"),
            "repository": record.get("repository"),
            "pull_request": record.get("pull_request")}
