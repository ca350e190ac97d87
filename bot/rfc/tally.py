"""Counting votes: reactions on the PR description and ``/vote`` commands, one vote per person.

Everything is recomputed from what GitHub holds right now (current reactions, current
comment text), so an edited or deleted vote comment and a removed reaction are honoured
without any bookkeeping. The order the signals arrive in never matters: they are sorted
by time with a stable tie-break before anything is decided.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

APPROVE = "approve"
REQUEST_CHANGES = "request_changes"
REJECT = "reject"
ABSTAIN = "abstain"
RETRACT = "retract"
OPTIONS: tuple[str, ...] = (APPROVE, REQUEST_CHANGES, REJECT, ABSTAIN)
OPTION_WORDS = {APPROVE: "approve", REQUEST_CHANGES: "request changes", REJECT: "reject",
                ABSTAIN: "abstain"}

REACTION_SOURCE = "reaction"
COMMENT_SOURCE = "comment"
_MIN_TIME = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Signal:
    """One thing a person did that expresses a vote: a reaction, or a `/vote` line."""

    user: str
    option: str  # one of OPTIONS, or RETRACT
    at: datetime | None
    source: str  # "reaction" | "comment"
    ref: int = 0  # reaction id or comment id (tie-break and links)
    reason: str = ""

    def sort_key(self) -> tuple[Any, ...]:
        at = self.at if self.at is not None else _MIN_TIME
        # Commands sort after reactions made in the same instant: typing is the
        # more deliberate act.
        return (at, self.source == COMMENT_SOURCE, self.ref, self.option, self.reason)


@dataclass(frozen=True)
class VoteRule:
    """The outcome rule for one RFC type, as configured."""

    quorum: int = 2
    threshold: float = 0.6667
    abstain_counts_toward_quorum: bool = True
    binding_level: str | None = None  # certification a committee vote needs to be binding

    @classmethod
    def from_config(cls, rfc_config: Mapping[str, Any], rfc_type: str | None) -> VoteRule:
        rules = rfc_config.get("vote_rules") or {}
        raw = rules.get(rfc_type or "") or rules.get("default") or {}
        return cls(quorum=int(raw.get("quorum", 2)),
                   threshold=float(raw.get("threshold", 0.6667)),
                   abstain_counts_toward_quorum=bool(raw.get("abstain_counts_toward_quorum",
                                                             True)))

    def describe(self) -> str:
        abstain = "abstentions count toward it" if self.abstain_counts_toward_quorum \
            else "abstentions do not count toward it"
        text = (f"quorum {self.quorum} binding vote{'s' if self.quorum != 1 else ''} "
                f"({abstain}); accept when approve / (approve + reject + request changes) "
                f"≥ {format_share(self.threshold)}")
        if self.binding_level:
            text += (f"; a committee member's vote is binding with the {self.binding_level} "
                     f"certification or above")
        return text


def format_share(value: float) -> str:
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + "%"


@dataclass(frozen=True)
class Voter:
    """One person's standing: what counts, and what is only shown."""

    login: str
    binding: bool
    option: str | None  # the counted vote (None: no counted vote)
    source: str = ""
    at: datetime | None = None
    reason: str = ""
    ref: int = 0
    late_option: str | None = None  # a newer vote cast after the period ended (not counted)
    conflicting: tuple[str, ...] = ()  # live reactions that disagree (not counted)


@dataclass(frozen=True)
class Outcome:
    quorum: int
    quorum_count: int
    quorum_met: bool
    approval_rate: float | None
    threshold: float
    threshold_met: bool
    decision: str  # "accept" | "reject" | "no_quorum"


@dataclass
class Tally:
    voters: list[Voter]
    binding: dict[str, int]
    non_binding: dict[str, int]
    outcome: Outcome
    rule: VoteRule
    binding_not_voted: list[str] = field(default_factory=list)

    @property
    def conflicting(self) -> list[Voter]:
        return [v for v in self.voters if v.conflicting]

    @property
    def late(self) -> list[Voter]:
        return [v for v in self.voters if v.late_option]

    def counts(self) -> dict[str, int]:
        """Binding counts, keyed the way the front matter's ``decision.tally`` records them."""
        return {option: self.binding[option] for option in OPTIONS}


def reaction_signals(reactions: Iterable[Any], mapping: Mapping[str, str],
                     is_bot: Callable[[str], bool]) -> list[Signal]:
    """Reactions (objects with id, user, content, created_at) that the mapping makes votes."""
    out = []
    for reaction in reactions:
        option = mapping.get(reaction.content)
        if option is None or is_bot(reaction.user):
            continue
        out.append(Signal(reaction.user, option, reaction.created_at, REACTION_SOURCE,
                          reaction.id))
    return out


def reactions_seen(signals: Iterable[Signal]) -> str:
    """A short fingerprint of the vote reactions behind a tally.

    GitHub sends no webhook for reactions, so the tick compares this with the one the
    status comment was rendered from to learn, with one listing, whether a vote by
    reaction was added or taken back since."""
    ids = sorted(str(s.ref) for s in signals if s.source == REACTION_SOURCE)
    return hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]


def _effective(signals: list[Signal]) -> tuple[Signal | None, tuple[str, ...]]:
    """A person's vote from their signals (already sorted): latest wins; live
    reactions newer than their latest command that disagree make them conflicting."""
    last_command = None
    for signal in signals:
        if signal.source == COMMENT_SOURCE:
            last_command = signal
    newer = [s for s in signals if s.source == REACTION_SOURCE
             and (last_command is None or s.sort_key() > last_command.sort_key())]
    options = sorted({s.option for s in newer})
    if len(options) > 1:
        return None, tuple(options)
    if newer:
        return newer[-1], ()
    if last_command is None or last_command.option == RETRACT:
        return None, ()
    return last_command, ()


def _in_time(signal: Signal, period_ends: datetime | None, until_comment: int | None) -> bool:
    if period_ends is None or signal.at is None or signal.at < period_ends:
        return True
    if signal.at > period_ends:
        return False
    if until_comment is None:
        return True
    return signal.source == COMMENT_SOURCE and signal.ref < until_comment


def tally(signals: Iterable[Signal], *, rule: VoteRule, is_binding: Callable[[str], bool],
          period_ends: datetime | None = None, binding_voters: Iterable[str] = (),
          is_bot: Callable[[str], bool] = lambda login: False,
          until_comment: int | None = None) -> Tally:
    """One vote per person; only binding votes cast by the end of the period count.

    ``until_comment`` makes the cut at ``period_ends`` exact when a command was written
    in that same second: only `/vote` comments written before it (lower id) count, and
    same-second reactions never do, since whether they had arrived when the command was
    answered depends on delivery order.
    """
    per_user: dict[str, list[Signal]] = {}
    names: dict[str, str] = {}
    for signal in signals:
        if is_bot(signal.user) or (signal.option not in OPTIONS and signal.option != RETRACT):
            continue
        key = signal.user.lower()
        per_user.setdefault(key, []).append(signal)
        names[key] = min(names.get(key, signal.user), signal.user)
    voters: list[Voter] = []
    binding = dict.fromkeys(OPTIONS, 0)
    non_binding = dict.fromkeys(OPTIONS, 0)
    for key in sorted(per_user):
        mine = sorted(per_user[key], key=Signal.sort_key)
        in_time = [s for s in mine if _in_time(s, period_ends, until_comment)]
        counted, conflicting = _effective(in_time)
        latest, latest_conflict = _effective(mine)
        late_option = None
        if latest is not None and latest != counted:
            late_option = latest.option
        elif latest_conflict and not conflicting:
            late_option = "conflicting"
        elif latest is None and counted is not None and not latest_conflict:
            late_option = RETRACT
        is_b = is_binding(names[key])
        if counted is not None:
            (binding if is_b else non_binding)[counted.option] += 1
        shown = counted
        voters.append(Voter(login=names[key], binding=is_b,
                            option=counted.option if counted else None,
                            source=shown.source if shown else "",
                            at=shown.at if shown else None,
                            reason=shown.reason if shown else "",
                            ref=shown.ref if shown else 0,
                            late_option=late_option, conflicting=conflicting))
    outcome = decide_outcome(binding, rule)
    voted = {v.login.lower() for v in voters if v.option is not None}
    not_voted = sorted({b for b in binding_voters if b.lower() not in voted and not is_bot(b)},
                       key=str.lower)
    return Tally(voters=voters, binding=binding, non_binding=non_binding, outcome=outcome,
                 rule=rule, binding_not_voted=not_voted)


def approval_rate(counts: Mapping[str, int]) -> float | None:
    """approve / (approve + reject + request changes); None when nobody took a side."""
    sides = counts.get(APPROVE, 0) + counts.get(REJECT, 0) + counts.get(REQUEST_CHANGES, 0)
    return counts.get(APPROVE, 0) / sides if sides else None


def decide_outcome(binding: Mapping[str, int], rule: VoteRule) -> Outcome:
    """The rule applied to binding counts. The rate is compared at four decimals, so the
    configured 0.6667 means "two thirds" and 2 of 3 meets it."""
    counted = binding.get(APPROVE, 0) + binding.get(REJECT, 0) + binding.get(REQUEST_CHANGES, 0)
    if rule.abstain_counts_toward_quorum:
        counted += binding.get(ABSTAIN, 0)
    quorum_met = counted >= rule.quorum
    rate = approval_rate(binding)
    threshold_met = rate is not None and round(rate, 4) >= rule.threshold
    if not quorum_met:
        decision = "no_quorum"
    elif threshold_met:
        decision = "accept"
    else:
        decision = "reject"
    return Outcome(rule.quorum, counted, quorum_met, rate, rule.threshold, threshold_met,
                   decision)
