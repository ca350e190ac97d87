"""The sticky status comment and the ledger it carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.rfc.discussion import summarize
from bot.rfc.lifecycle import Facts, Machine
from bot.rfc.record import Ledger, Pending, fold, replay
from bot.rfc.slash import parse_commands
from bot.rfc.status import STATUS_MARKER, build_view, days_left, render_status
from bot.rfc.tally import APPROVE, REJECT, Signal, VoteRule, tally

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def facts_for(machine: Machine, at: datetime, command, comment_id=None) -> Facts:
    return Facts(now=at, period_ends=machine.period_ends, period_length=timedelta(days=14),
                 duration=command.duration if command else None,
                 concern=command.argument if command else "",
                 quorum_met=True, threshold_met=True, unresolved_concerns=machine.unresolved)


def pending(cid, author, minutes, text, roles=("committee",)):
    (cmd,) = parse_commands(text)
    return Pending(cid, author, T0 + timedelta(minutes=minutes), cmd, frozenset(roles))


def view(state="open_for_comment", signals=(), title="Title", ledger=None, concerns=(),
         errors=(), now=T0):
    t = tally(signals, rule=VoteRule(), is_binding=lambda u: u in ("alice", "bob"),
              binding_voters=["alice", "bob"])
    d = summarize([], [], rfc_path="rfcs/0001-x.md", authors=[], is_bot=lambda u: False)
    return build_view(number=7, title=title, rfc_path="rfcs/0001-x.md", rfc_type="standard",
                      state=state, now=now, period_ends=T0 + timedelta(days=3),
                      tally=t, discussion=d, unresolved=list(concerns), resolved=[],
                      late_concerns=[], errors=list(errors), require_answered=False,
                      ledger=ledger or Ledger())


def test_status_shows_period_rule_tally_and_who_has_not_voted():
    body = render_status(view(signals=[Signal("alice", APPROVE, T0, "reaction", 1),
                                       Signal("zed", REJECT, T0, "comment", 2, "no")]))
    assert body.startswith(STATUS_MARKER)
    assert "2026-03-04 09:00 UTC (3 days, 0 h left)" in body
    assert "quorum 2 binding votes" in body
    assert "| approve | 1 | 0 |" in body and "| reject | 0 | 1 |" in body
    assert "Binding voters who have not voted: bob." in body
    assert '```mermaid\npie showData title Binding votes\n    "approve" : 1\n```' in body


def test_user_text_cannot_mention_break_tables_or_fake_the_marker():
    evil = "@everyone | <!-- cvf:rfc-status --> <b>hi</b>"
    body = render_status(view(title=evil, concerns=[evil], errors=[evil]))
    assert body.count("<!-- cvf:rfc-status -->") == 1
    assert "@everyone" not in body and "<b>" not in body
    assert "\\|" in body


def test_days_left():
    assert days_left(T0, T0 + timedelta(days=1, hours=5)) == "1 day, 5 h left"
    assert days_left(T0, T0 + timedelta(minutes=90)) == "1 h 30 min left"
    assert days_left(T0, T0 - timedelta(seconds=1)) == "ended"


def test_ledger_survives_the_round_trip_through_the_comment():
    result = replay(Ledger(), [pending(1, "alice", 0, "/rfc open", ("author",)),
                               pending(2, "bob", 5, "/rfc concern <script> -->")],
                    now=T0 + timedelta(minutes=10), facts_for=facts_for)
    result.ledger.entries[0].reason = "<!-- --> <script>"
    body = render_status(view(ledger=result.ledger, concerns=result.machine.unresolved))
    decoded = Ledger.decode(body)
    assert decoded == result.ledger
    assert fold(decoded)[0].unresolved == ("script --",)
    assert "<script>" not in body


def test_replay_is_idempotent_and_runs_the_clock():
    commands = [pending(1, "alice", 0, "/rfc open", ("author",)),
                pending(2, "bob", 60, "/rfc accept")]
    first = replay(Ledger(), commands, now=T0 + timedelta(days=15), facts_for=facts_for)
    kinds = [(e.command, e.outcome) for e in first.ledger.entries]
    assert kinds == [("open", "applied"), ("accept", "refused"), ("period_end", "applied")]
    assert first.state == "review"
    again = replay(first.ledger, commands, now=T0 + timedelta(days=16), facts_for=facts_for)
    assert again.new_entries == [] and again.ledger == first.ledger
    # A refused command stays refused even if it would pass now.
    later = replay(first.ledger, commands + [pending(3, "bob", 60 * 24 * 15, "/rfc accept")],
                   now=T0 + timedelta(days=16), facts_for=facts_for)
    assert [e.command for e in later.new_entries] == ["accept"] and later.state == "accepted"


def test_concern_after_the_period_is_recorded_but_does_not_block():
    commands = [pending(1, "alice", 0, "/rfc open", ("author",)),
                pending(2, "bob", 60 * 24 * 15, "/rfc concern late one")]
    result = replay(Ledger(), commands, now=T0 + timedelta(days=16), facts_for=facts_for)
    assert result.late_concerns == ["late one"] and result.machine.unresolved == ()


def test_closing_the_pull_request_withdraws_an_open_rfc():
    result = replay(Ledger(), [pending(1, "alice", 0, "/rfc open", ("author",))],
                    now=T0 + timedelta(days=1), facts_for=facts_for,
                    closed_at=T0 + timedelta(hours=1), closed_by="alice")
    assert result.state == "withdrawn"


def test_a_broken_ledger_reads_as_empty():
    assert Ledger.decode("<!-- cvf:rfc-ledger {not json} -->").entries == []
    assert Ledger.decode('<!-- cvf:rfc-ledger {"entries": [{"x": 1}]} -->').entries == []
