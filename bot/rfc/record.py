"""The record of an RFC's lifecycle: every command the bot answered, in order.

Votes are recomputed from GitHub every time, but lifecycle decisions must not be: a
reaction removed after acceptance must not un-accept an RFC. So each answered command
(applied or refused) and each clock transition is written to a ledger, kept as hidden
JSON in the bot's own sticky status comment. State = the ledger folded through the
lifecycle table, then any commands the ledger does not yet hold, in the order they were
written. Two handlers racing on the same RFC read the same comments and reach the same
entries; whichever writes last re-reads and fills in anything the other added.

The ledger is bounded whatever people write (it lives in a comment of at most 65,536
characters): only the newest ``KEEP_ENTRIES`` entries are kept whole, within
``LEDGER_BUDGET`` characters. Older ones are folded into a ``Base``: the state they lead
to, the concerns, the milestones the status comment and the front matter quote (who
decided, when the period opened), and ``through``, the position of the newest command
folded away. A command at or before ``through`` that the ledger does not name was
answered long ago (a refusal, or an applied command now part of the base), so a flood of
10,000 refused commands costs the comment nothing after the first few dozen. (A command
added by *editing* such an old comment is therefore not read: write a new comment.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime

from bot.rfc.lifecycle import (
    BOT,
    DRAFT,
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
    refuse_early,
)
from bot.rfc.slash import Command

LEDGER_MARKER = "cvf:rfc-ledger"
KEEP_ENTRIES = 40
LEDGER_BUDGET = 12_000  # characters of the encoded ledger, base included
KEEP_RESOLVED = 20  # resolved concern names kept in the base (unresolved ones all are)
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
class Base:
    """What the entries folded out of the ledger add up to (see the module's docstring)."""

    state: str = DRAFT
    period_ends: str | None = None
    concerns: dict[str, bool] = field(default_factory=dict)  # name -> resolved?
    raisers: dict[str, str] = field(default_factory=dict)  # concern name -> who raised it
    late: list[str] = field(default_factory=list)  # concerns raised after the period
    through: tuple[str, int] | None = None  # (at, comment id) of the newest command folded
    marks: list[Entry] = field(default_factory=list)  # first open, last move into each state
    folded: int = 0  # how many entries were folded (refusals included)

    def covers(self, at: datetime, comment_id: int) -> bool:
        """Was a command at this position already answered and folded away?"""
        if self.through is None:
            return False
        through_at = parse_iso(self.through[0]) or datetime.min.replace(tzinfo=UTC)
        return (at.replace(microsecond=0), comment_id) <= (through_at, self.through[1])

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"state": self.state, "n": self.folded,
                                   "marks": [_compact(e) for e in self.marks]}
        if self.period_ends:
            data["ends"] = self.period_ends
        if self.concerns:
            data["concerns"] = [[name, int(done), self.raisers.get(name, "")]
                                for name, done in self.concerns.items()]
        if self.late:
            data["late"] = self.late
        if self.through:
            data["through"] = list(self.through)
        return data

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Base:
        through = raw.get("through")
        return cls(state=str(raw.get("state") or DRAFT),
                   period_ends=str(raw["ends"]) if raw.get("ends") else None,
                   concerns={str(c[0]): bool(c[1]) for c in raw.get("concerns") or []},  # type: ignore[attr-defined]
                   raisers={str(c[0]): str(c[2]) for c in raw.get("concerns") or []  # type: ignore[attr-defined]
                            if len(c) > 2 and c[2]},
                   late=[str(n) for n in raw.get("late") or []],  # type: ignore[attr-defined]
                   through=(str(through[0]), int(through[1]))  # type: ignore[index]
                   if through else None,
                   marks=[_entry(m) for m in raw.get("marks") or []],  # type: ignore[attr-defined]
                   folded=int(raw.get("n") or 0))  # type: ignore[call-overload]


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)
    base: Base = field(default_factory=Base)

    def keys(self) -> set[str]:
        return {e.key for e in self.entries}

    @property
    def history(self) -> list[Entry]:
        """The milestones folded away, then the entries kept: what readers of the past use
        (who decided, when the period opened, the history table)."""
        return [*self.base.marks, *self.entries]

    def answered(self, pending: Pending) -> bool:
        return pending.key in self.keys() or self.base.covers(pending.at, pending.comment_id)

    def encode(self) -> str:
        """A hidden HTML comment; ``<`` and ``>`` are escaped so user text cannot close it."""
        raw: dict[str, object] = {"v": 2, "entries": [_compact(e) for e in self.entries]}
        if self.base != Base():
            raw["base"] = self.base.to_json()
        data = json.dumps(raw, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
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
            entries = [_entry(item) for item in raw.get("entries", [])]
            base = Base.from_json(raw["base"]) if raw.get("base") else Base()
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            return cls()
        return cls(entries, base)


def _entry(item: dict[str, object]) -> Entry:
    return Entry(**{k: v for k, v in item.items() if k in _NAMES})  # type: ignore[arg-type]


def compact(ledger: Ledger) -> Ledger:
    """The same ledger within ``KEEP_ENTRIES`` entries and ``LEDGER_BUDGET`` characters:
    the oldest entries are folded into the base until it fits."""
    entries = list(ledger.entries)
    base = replace(ledger.base, concerns=dict(ledger.base.concerns),
                   late=list(ledger.base.late), marks=list(ledger.base.marks))
    extra = max(0, len(entries) - KEEP_ENTRIES)
    for entry in entries[:extra]:
        _fold_into(base, entry)
    entries = entries[extra:]
    while entries and len(Ledger(entries, base).encode()) > LEDGER_BUDGET:
        _fold_into(base, entries.pop(0))
    return Ledger(entries, base)


def _fold_into(base: Base, entry: Entry) -> None:
    base.folded += 1
    if entry.comment_id:
        position = (entry.at, entry.comment_id)
        if base.through is None or (entry.when, entry.comment_id) > (
                parse_iso(base.through[0]) or entry.when, base.through[1]):
            base.through = position
    if entry.outcome != APPLIED:
        return
    machine, late = _machine(base)
    _apply(machine, late, entry)
    base.state = machine.state
    base.period_ends = iso(machine.period_ends) if machine.period_ends else None
    resolved = [name for name, done in machine.concerns.items() if done]
    drop = set(resolved[:max(0, len(resolved) - KEEP_RESOLVED)])
    base.concerns = {n: d for n, d in machine.concerns.items() if n not in drop}
    if entry.command == "concern" and not entry.late:
        base.raisers[entry.argument] = entry.by
    base.raisers = {n: who for n, who in base.raisers.items() if n in base.concerns}
    base.late = sorted(late)
    if entry.from_state != entry.to_state:
        # At most one mark per state (the last move into it) plus the first `open`.
        first_open = next((m for m in base.marks if m.command == "open"), None)
        base.marks = [*(m for m in base.marks
                        if m is first_open or m.to_state != entry.to_state), entry]


def _machine(base: Base) -> tuple[Machine, dict[str, bool]]:
    machine = Machine(state=base.state, period_ends=parse_iso(base.period_ends),
                      concerns=dict(base.concerns))
    return machine, dict.fromkeys(base.late, True)


def _apply(machine: Machine, late: dict[str, bool], entry: Entry) -> None:
    if entry.command == "concern" and entry.late:
        late[entry.argument] = True
        return
    if entry.command == "resolve" and entry.argument in late:
        late.pop(entry.argument)
    machine.apply(Transition(entry.command, entry.from_state, entry.to_state,
                             parse_iso(entry.period_ends), entry.argument))


_DEFAULTS = {f.name: f.default for f in fields(Entry)}
_NAMES = frozenset(_DEFAULTS)
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
    machine, late = _machine(ledger.base)
    for entry in ledger.entries:
        if entry.outcome == APPLIED:
            _apply(machine, late, entry)
    return machine, sorted(late)


def replay(ledger: Ledger, pending: Iterable[Pending], *, now: datetime,
           facts_for: FactsFor, permissions: dict[str, frozenset[str]] | None = None,
           closed_at: datetime | None = None, closed_by: str = "") -> Replay:
    """Fold the ledger, answer the pending commands in written order, then let the clock run."""
    known = ledger.keys()
    entries = list(ledger.entries)
    base = ledger.base
    new: list[Entry] = []
    machine, _ = fold(ledger)

    def record(entry: Entry) -> None:
        nonlocal machine
        entries.append(entry)
        new.append(entry)
        known.add(entry.key)
        if entry.outcome == APPLIED:  # a refusal changes nothing: no need to fold again
            machine, _ = fold(Ledger(entries, base))

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

    ordered = sorted((p for p in pending if not ledger.answered(p)),
                     key=lambda p: (p.at, p.comment_id, p.command.line_no))
    for item in ordered:
        if item.key in known:
            continue  # the same command twice in one comment is answered once
        run_clock(item.at)
        # Who may and in which state first: a flood of refused commands never pays for
        # the facts (a tally per command).
        result: Transition | Refusal | None = refuse_early(
            machine.state, item.command.name, item.roles, permissions)
        if result is None:
            facts = facts_for(machine, item.at, item.command, item.comment_id)
            result = decide(machine.state, item.command.name, item.roles, facts, permissions)
        fields_ = dict(key=item.key, command=item.command.name, by=item.author,
                       at=iso(item.at), argument=item.command.argument,
                       comment_id=item.comment_id, from_state=machine.state)
        if isinstance(result, Refusal):
            record(Entry(**fields_, outcome=REFUSED, reason=result.reason))  # type: ignore[arg-type]
            continue
        late = (result.command == "concern" and machine.period_ends is not None
                and machine.state != OPEN and machine.state in OPEN_STATES
                and item.at > machine.period_ends)
        record(Entry(**fields_, outcome=APPLIED, to_state=result.to_state,  # type: ignore[arg-type]
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
    _, late_concerns = fold(Ledger(entries, base))
    return Replay(machine=machine, ledger=compact(Ledger(entries, base)), new_entries=new,
                  late_concerns=late_concerns)


def deciders(ledger: Ledger, to_state: str) -> list[str]:
    """Who decided the move into ``to_state`` (the last time it happened): the binding
    voters and the committee member who recorded it, as the front matter's ``deciders``."""
    for entry in reversed(ledger.history):
        if entry.outcome == APPLIED and entry.to_state == to_state and entry.from_state != to_state:
            if entry.deciders:
                return list(entry.deciders)
            return [entry.by] if entry.by != BOT else []
    return []


def decided_at(ledger: Ledger, to_state: str) -> datetime | None:
    for entry in reversed(ledger.history):
        if entry.outcome == APPLIED and entry.to_state == to_state and entry.from_state != to_state:
            return entry.when
    return None


def opened_at(ledger: Ledger) -> datetime | None:
    """When the comment period first opened (for time-to-decision statistics)."""
    for entry in ledger.history:
        if entry.outcome == APPLIED and entry.command == "open":
            return entry.when
    return None


def review_started(entries: Sequence[Entry]) -> Entry | None:
    for entry in reversed(entries):
        if entry.outcome == APPLIED and entry.to_state == REVIEW and entry.from_state == OPEN:
            return entry
    return None
