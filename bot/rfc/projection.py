"""What the RFC's recorded state looks like in its own front matter.

Labels, the status comment and the front matter are all projections of the ledger; this
module computes the front-matter fields so that a document the bot writes always passes
lint (a draft has no period, a decided RFC has a decision with date and deciders).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.rfc.lifecycle import DECIDED_STATES, DRAFT
from bot.rfc.record import Entry, iso


def front_matter_changes(*, state: str, period_ends: datetime | None, decision: Entry | None,
                         pull_url: str, current: dict[str, Any]) -> dict[str, Any]:
    """Fields to set (``None`` = remove) so the front matter matches ``state``."""
    changes: dict[str, Any] = {"status": state}
    if state == DRAFT:
        changes["comment_period_ends"] = None
    elif period_ends is not None:
        changes["comment_period_ends"] = iso(period_ends)
    if pull_url and (state != DRAFT or current.get("discussion")):
        changes["discussion"] = current.get("discussion") or pull_url
    if state in DECIDED_STATES and decision is not None:
        record: dict[str, Any] = {"date": decision.when.date().isoformat(),
                                  "deciders": list(decision.deciders or [decision.by])}
        if decision.tally:
            record["tally"] = dict(decision.tally)
        if pull_url:
            record["url"] = pull_url
        changes["decision"] = record
    elif state not in DECIDED_STATES:
        changes["decision"] = None
    return {k: v for k, v in changes.items() if _differs(current.get(k), v)}


def _differs(old: Any, new: Any) -> bool:
    if new is None:
        return old is not None
    if isinstance(old, datetime):
        return iso(old) != new
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: _plain(v) for k, v in old.items()} != {k: _plain(v) for k, v in new.items()}
    return _plain(old) != new


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
