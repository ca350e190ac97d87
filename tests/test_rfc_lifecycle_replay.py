"""Properties of the recorded lifecycle: replay is idempotent, incremental equals batch,
and the ledger survives any text a user can put into it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rfc.lifecycle import STATES, Facts, Machine
from bot.rfc.record import LEDGER_MARKER, Entry, Ledger, Pending, replay
from bot.rfc.slash import parse_commands

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LINES = ["/rfc open", "/rfc review", "/rfc accept", "/rfc reject", "/rfc postpone",
         "/rfc withdraw", "/rfc extend 3d", "/rfc concern scope", "/rfc resolve scope",
         "/rfc concern cost"]
ROLE_SETS = [frozenset(), frozenset({"author"}), frozenset({"committee"}),
             frozenset({"author", "committee"})]


def facts_for(machine: Machine, at: datetime, command, comment_id=None) -> Facts:
    # Votes are a pure function of time here, so both replays see the same facts.
    minute = int((at - T0).total_seconds() // 60)
    return Facts(now=at, period_ends=machine.period_ends, period_length=timedelta(days=2),
                 duration=command.duration if command else None,
                 concern=command.argument if command else "",
                 quorum_met=minute % 3 != 0, threshold_met=minute % 2 == 0,
                 unresolved_concerns=machine.unresolved)


command_strategy = st.lists(
    st.tuples(st.sampled_from(LINES), st.sampled_from(ROLE_SETS), st.integers(1, 60 * 24 * 6)),
    max_size=20)


def pendings(items):
    out = []
    for index, (line, roles, minute) in enumerate(sorted(items, key=lambda i: i[2])):
        (command,) = parse_commands(line)
        out.append(Pending(1000 + index, f"user{index % 3}", T0 + timedelta(minutes=minute),
                           command, roles))
    return out


@settings(max_examples=150, deadline=None)
@given(command_strategy, st.integers(0, 60 * 24 * 10))
def test_replaying_twice_changes_nothing(items, extra):
    cmds = pendings(items)
    now = T0 + timedelta(minutes=60 * 24 * 6 + extra)
    first = replay(Ledger(), cmds, now=now, facts_for=facts_for)
    assert first.state in STATES
    again = replay(first.ledger, cmds, now=now, facts_for=facts_for)
    assert again.new_entries == [] and again.ledger == first.ledger


@settings(max_examples=150, deadline=None)
@given(command_strategy, st.integers(0, 20))
def test_handling_events_one_by_one_equals_handling_them_at_once(items, split):
    cmds = pendings(items)
    end = T0 + timedelta(days=8)
    batch = replay(Ledger(), cmds, now=end, facts_for=facts_for)
    k = min(split, len(cmds))
    ledger = Ledger()
    if k:
        ledger = replay(ledger, cmds[:k], now=cmds[k - 1].at, facts_for=facts_for).ledger
    step = replay(ledger, cmds, now=end, facts_for=facts_for)
    assert step.ledger == batch.ledger and step.state == batch.state


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(Entry, key=st.text(max_size=30), command=st.text(max_size=10),
                          by=st.text(max_size=20), at=st.text(max_size=25),
                          outcome=st.sampled_from(["applied", "refused"]),
                          argument=st.text(max_size=40), reason=st.text(max_size=40)),
                max_size=5))
def test_any_text_in_the_ledger_round_trips_and_cannot_close_the_comment(entries):
    encoded = Ledger(entries).encode()
    assert encoded.count("-->") == 1 and encoded.endswith("-->")
    assert Ledger.decode(encoded).encode() == encoded


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_decoding_any_comment_never_fails(text):
    for body in (text, f"<!-- {LEDGER_MARKER} {text} -->"):
        assert isinstance(Ledger.decode(body), Ledger)
