"""The ledger stays bounded whatever people write, and folding it changes no decision."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rfc import record
from bot.rfc.record import KEEP_ENTRIES, LEDGER_BUDGET, Ledger, replay
from tests.test_rfc_lifecycle_replay import T0, command_strategy, facts_for, pendings


@settings(max_examples=150, deadline=None)
@given(command_strategy, st.integers(0, 20))
def test_folding_changes_no_decision(items, split):
    """A ledger folded after every few entries reaches the same state, concerns and
    deciders as one that keeps everything, and answers no command twice."""
    cmds = pendings(items)
    now = T0 + timedelta(days=8)
    whole = replay(Ledger(), cmds, now=now, facts_for=facts_for)
    k = min(split, len(cmds))
    keep = record.KEEP_ENTRIES
    record.KEEP_ENTRIES = 3
    try:
        # The first event comes when the first k commands are written (as in
        # test_handling_events_one_by_one_equals_handling_them_at_once).
        first = replay(Ledger(), cmds[:k], now=cmds[k - 1].at if k else T0,
                       facts_for=facts_for)
        decoded = Ledger.decode(first.ledger.encode())
        second = replay(decoded, cmds, now=now, facts_for=facts_for)
        again = replay(Ledger.decode(second.ledger.encode()), cmds, now=now,
                       facts_for=facts_for)
    finally:
        record.KEEP_ENTRIES = keep
    assert (second.state, second.machine.concerns, second.machine.period_ends) == \
        (whole.state, whole.machine.concerns, whole.machine.period_ends)
    assert len(second.ledger.entries) <= 3
    assert again.new_entries == []
    for state in ("accepted", "rejected"):
        assert record.deciders(second.ledger, state) == record.deciders(whole.ledger, state)
        assert record.decided_at(second.ledger, state) == record.decided_at(whole.ledger, state)
    assert record.opened_at(second.ledger) == record.opened_at(whole.ledger)


def test_ten_thousand_refusals_fit_the_budget():
    from bot.rfc.record import Pending
    from bot.rfc.slash import parse_commands

    cmds = []
    for i in range(10_000):
        line = f"/rfc concern {'x' * 180} {i}" if i % 2 else "/rfc accept"
        (command,) = parse_commands(line)
        cmds.append(Pending(10 + i, "mallory", T0 + timedelta(seconds=i), command,
                            frozenset()))
    result = replay(Ledger(), cmds, now=T0 + timedelta(days=1), facts_for=facts_for)
    assert len(result.new_entries) == 10_000
    encoded = result.ledger.encode()
    assert len(encoded) <= LEDGER_BUDGET and len(result.ledger.entries) <= KEEP_ENTRIES
    # Nothing is answered twice, and a new command after the flood is read.
    decoded = Ledger.decode(encoded)
    assert replay(decoded, cmds, now=T0 + timedelta(days=1),
                  facts_for=facts_for).new_entries == []
    (late,) = parse_commands("/rfc accept")
    later = Pending(99_999, "mallory", T0 + timedelta(days=1), late, frozenset())
    assert len(replay(decoded, [*cmds, later], now=T0 + timedelta(days=2),
                      facts_for=facts_for).new_entries) == 1
