"""The record of an RFC's lifecycle: every command the bot answered, in order.

Votes are recomputed from GitHub every time, but lifecycle decisions must not be: a
reaction removed after acceptance must not un-accept an RFC. So each answered command
(applied or refused) and each clock transition is written to a ledger, kept as hidden
JSON in the bot's own sticky status comment. State = the ledger folded through the
lifecycle table, then any commands the ledger does not yet hold, in the order they were
written. Two handlers racing on the same RFC read the same comments and reach the same
entries; whichever writes last re-reads and fills in anything the other added.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

from bot.rfc.lifecycle import (
    BOT,
    OPEN,
    OPEN_STATES,
    PERIOD_END,
    REVIEW,
    WITHDRAWN,
    Facts,
    Machine,
    Refusal,
    Transition,
    decide,
)
from bot.rfc.slash import Command

LEDGER_MARKER = "cvf:rfc-ledger"
_LEDGER = re.compile(r"<!-- cvf:rfc-ledger (\{.*?\}) -->", re.DOTALL)
APPLIED = "applied"
REFUSED = "refused"


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Entry:
    """One answered command or clock event. ``key`` makes answering idempotent."""

    key: str
    command: str
    by: str
    at: str  # ISO instant the command was written (or the period ended)
    outcome: str  # applied | refused
    from_state: str = ""
    to_state: str = ""
    argument: str = ""
    period_ends: str | None = None
    reason: str = ""
    late: bool = False  # a concern raised after the period ended: shown, not blocking
    comment_id: int = 0
    tally: dict[str, int] | None = None  # frozen binding tally of a decision
    deciders: list[str] | None = None

    @property
    def when(self) -> datetime:
        return parse_iso(self.at) or datetime.min.replace(tzinfo=UTC)


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)

    def keys(self) -> set[str]:
        return {e.key for e in self.entries}

    def encode(self) -> str:
        """A hidden HTML comment; ``<`` and ``>`` are escaped so user text cannot close it."""
        data = json.dumps({"v": 1, "entries": [_compact(e) for e in self.entries]},
                          separators=(",", ":"), sort_keys=True, ensure_ascii=True)
        data = data.replace("<", "\\u003c").replace(">", "\\u003e")
        return f"<!-- {LEDGER_MARKER} {data} -->"

    @classmethod
    def decode(cls, body: str) -> Ledger:
        """The ledger in a bot comment; anything unreadable is an empty ledger."""
        match = _LEDGER.search(body or "")
        if not match:
            return cls()
        try:
            raw = json.loads(match.group(1))
            names = {f.name for f in fields(Entry)}
            entries = [Entry(**{k: v for k, v in item.items() if k in names})
                       for item in raw.get("entries", [])]
        except (ValueError, TypeError, AttributeError):
            return cls()
        return cls(entries)


_DEFAULTS = {f.name: f.default for f in fields(Entry)}
_REFUSED_KEEP = frozenset({"key", "command", "by", "at", "outcome", "comment_id"})


def _compact(entry: Entry) -> dict[str, object]:
    """Only what replay needs: defaults are left out, and a refused command (already
    answered) keeps just its identity, so a flood of bad commands cannot fill the comment."""
    data = asdict(entry)
    if entry.outcome == REFUSED:
        data = {k: v for k, v in data.items() if k in _REFUSED_KEEP}
    return {k: v for k, v in data.items() if k in ("key", "command", "by", "at", "outcome")
            or v != _DEFAULTS.get(k)}


@dataclass(frozen=True)
class Pending:
    """A lifecycle command found in a comment, not yet in the ledger."""

    comment_id: int
    author: str
    at: datetime
    command: Command
    roles: frozenset[str]

    @property
    def key(self) -> str:
        return f"{self.comment_id}:{self.command.key}"


# (machine, instant, command, id of the command's comment or None for the clock) -> facts.
# The comment id orders things written in the same second as the command.
FactsFor = Callable[[Machine, datetime, Command | None, int | None], Facts]


@dataclass
class Replay:
    machine: Machine
    ledger: Ledger
    new_entries: list[Entry]
    late_concerns: list[str]

    @property
    def state(self) -> str:
        return self.machine.state


def fold(ledger: Ledger) -> tuple[Machine, list[str]]:
    """The state the recorded history leads to (and the concerns raised too late to block)."""
    machine = Machine()
    late: dict[str, bool] = {}
    for entry in ledger.entries:
        if entry.outcome != APPLIED:
            continue
        if entry.command == "concern" and entry.late:
            late[entry.argument] = True
            continue
        if entry.command == "resolve" and entry.argument in late:
            late.pop(entry.argument)
        machine.apply(Transition(entry.command, entry.from_state, entry.to_state,
                                 parse_iso(entry.period_ends), entry.argument))
    return machine, sorted(late)


def replay(ledger: Ledger, pending: Iterable[Pending], *, now: datetime,
           facts_for: FactsFor, permissions: dict[str, frozenset[str]] | None = None,
           closed_at: datetime | None = None, closed_by: str = "") -> Replay:
    """Fold the ledger, answer the pending commands in written order, then let the clock run."""
    known = ledger.keys()
    entries = list(ledger.entries)
    new: list[Entry] = []
    machine, _ = fold(Ledger(entries))

    def record(entry: Entry) -> None:
        nonlocal machine
        entries.append(entry)
        new.append(entry)
        known.add(entry.key)
        machine, _ = fold(Ledger(entries))

    def run_clock(until: datetime) -> None:
        ends = machine.period_ends
        if machine.state == OPEN and ends is not None and ends <= until:
            key = f"clock:{iso(ends)}"
            if key in known:
                return
            result = decide(machine.state, PERIOD_END, {BOT}, facts_for(machine, ends, None, None))
            if isinstance(result, Transition):
                record(Entry(key=key, command=PERIOD_END, by=BOT, at=iso(ends),
                             outcome=APPLIED, from_state=result.from_state,
                             to_state=result.to_state))

    ordered = sorted((p for p in pending if p.key not in known),
                     key=lambda p: (p.at, p.comment_id, p.command.line_no))
    for item in ordered:
        if item.key in known:
            continue  # the same command twice in one comment is answered once
        run_clock(item.at)
        facts = facts_for(machine, item.at, item.command, item.comment_id)
        result = decide(machine.state, item.command.name, item.roles, facts, permissions)
        base = dict(key=item.key, command=item.command.name, by=item.author,
                    at=iso(item.at), argument=item.command.argument,
                    comment_id=item.comment_id, from_state=machine.state)
        if isinstance(result, Refusal):
            record(Entry(**base, outcome=REFUSED, reason=result.reason))  # type: ignore[arg-type]
            continue
        late = (result.command == "concern" and machine.period_ends is not None
                and machine.state != OPEN and machine.state in OPEN_STATES
                and item.at > machine.period_ends)
        record(Entry(**base, outcome=APPLIED, to_state=result.to_state,  # type: ignore[arg-type]
                     period_ends=iso(result.period_ends) if result.period_ends else None,
                     late=late))
    if closed_at is not None and machine.state in OPEN_STATES | {"postponed"}:
        run_clock(closed_at)
        key = f"closed:{iso(closed_at)}"
        if key not in known:
            record(Entry(key=key, command="close", by=closed_by or BOT, at=iso(closed_at),
                         outcome=APPLIED, from_state=machine.state, to_state=WITHDRAWN,
                         reason="the pull request was closed without merging"))
    run_clock(now)
    _, late_concerns = fold(Ledger(entries))
    return Replay(machine=machine, ledger=Ledger(entries), new_entries=new,
                  late_concerns=late_concerns)


def deciders(ledger: Ledger, to_state: str) -> list[str]:
    """Who decided the move into ``to_state`` (the last time it happened): the binding
    voters and the committee member who recorded it, as the front matter's ``deciders``."""
    for entry in reversed(ledger.entries):
        if entry.outcome == APPLIED and entry.to_state == to_state and entry.from_state != to_state:
            if entry.deciders:
                return list(entry.deciders)
            return [entry.by] if entry.by != BOT else []
    return []


def decided_at(ledger: Ledger, to_state: str) -> datetime | None:
    for entry in reversed(ledger.entries):
        if entry.outcome == APPLIED and entry.to_state == to_state and entry.from_state != to_state:
            return entry.when
    return None


def opened_at(ledger: Ledger) -> datetime | None:
    """When the comment period first opened (for time-to-decision statistics)."""
    for entry in ledger.entries:
        if entry.outcome == APPLIED and entry.command == "open":
            return entry.when
    return None


def review_started(entries: Sequence[Entry]) -> Entry | None:
    for entry in reversed(entries):
        if entry.outcome == APPLIED and entry.to_state == REVIEW and entry.from_state == OPEN:
            return entry
    return None
