"""Vote counting: one vote per person, latest wins, binding vs not, the outcome rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.github.port import Reaction
from bot.rfc.tally import (
    ABSTAIN,
    APPROVE,
    OPTIONS,
    REJECT,
    REQUEST_CHANGES,
    RETRACT,
    Signal,
    VoteRule,
    decide_outcome,
    reaction_signals,
    tally,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
COMMITTEE = {"alice", "bob", "carol"}
MAPPING = {"+1": APPROVE, "confused": REQUEST_CHANGES, "-1": REJECT, "eyes": ABSTAIN}


def binding(login: str) -> bool:
    return login.lower() in COMMITTEE


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def react(user, option, minute, ref=0):
    return Signal(user, option, at(minute), "reaction", ref or minute)


def vote(user, option, minute, reason="", ref=0):
    return Signal(user, option, at(minute), "comment", ref or 1000 + minute, reason)


def run(signals, **kw):
    kw.setdefault("rule", VoteRule())
    return tally(signals, is_binding=binding, binding_voters=sorted(COMMITTEE), **kw)


def test_reactions_map_to_votes_and_unknown_or_bot_reactions_are_ignored():
    reactions = [Reaction(1, "alice", "+1", at(1)), Reaction(2, "bob", "heart", at(1)),
                 Reaction(3, "cvf-governance[bot]", "+1", at(1))]
    signals = reaction_signals(reactions, MAPPING, lambda u: u.endswith("[bot]"))
    assert [(s.user, s.option) for s in signals] == [("alice", APPROVE)]


def test_latest_of_reaction_and_command_wins():
    result = run([react("alice", APPROVE, 1), vote("alice", REJECT, 2, "too risky")])
    (alice,) = result.voters
    assert alice.option == REJECT and alice.source == "comment" and alice.reason == "too risky"
    result = run([vote("alice", REJECT, 1), react("alice", APPROVE, 2)])
    assert result.voters[0].option == APPROVE


def test_two_conflicting_live_reactions_are_listed_not_counted():
    result = run([react("alice", APPROVE, 1), react("alice", REJECT, 2)])
    (alice,) = result.voters
    assert alice.option is None and alice.conflicting == (APPROVE, REJECT)
    assert result.binding[APPROVE] == result.binding[REJECT] == 0
    assert "alice" in result.binding_not_voted
    # A later command settles it.
    settled = run([react("alice", APPROVE, 1), react("alice", REJECT, 2), vote("alice", REJECT, 3)])
    assert settled.voters[0].option == REJECT and not settled.voters[0].conflicting


def test_two_reactions_meaning_the_same_vote_do_not_conflict():
    result = run([react("alice", APPROVE, 1, ref=1), react("alice", APPROVE, 2, ref=2)])
    assert result.voters[0].option == APPROVE


def test_retract_removes_the_vote():
    result = run([vote("alice", APPROVE, 1), vote("alice", RETRACT, 2)])
    assert result.voters[0].option is None and result.binding[APPROVE] == 0


def test_votes_after_the_period_are_shown_not_counted():
    ends = at(10)
    result = run([vote("alice", APPROVE, 5), vote("alice", REJECT, 11), react("dave", APPROVE, 12)],
                 period_ends=ends)
    alice = next(v for v in result.voters if v.login == "alice")
    dave = next(v for v in result.voters if v.login == "dave")
    assert alice.option == APPROVE and alice.late_option == REJECT
    assert dave.option is None and dave.late_option == APPROVE
    assert result.binding[APPROVE] == 1 and result.binding[REJECT] == 0


def test_binding_and_non_binding_are_counted_apart_and_bots_never():
    result = run([vote("alice", APPROVE, 1), vote("Dave", APPROVE, 1),
                  vote("cvf-governance[bot]", REJECT, 1)],
                 is_bot=lambda u: u.endswith("[bot]"))
    assert result.binding[APPROVE] == 1 and result.non_binding[APPROVE] == 1
    assert result.binding[REJECT] == result.non_binding[REJECT] == 0
    assert result.binding_not_voted == ["bob", "carol"]


def test_logins_are_case_insensitive():
    result = run([vote("Alice", APPROVE, 1), react("alice", REJECT, 2)])
    assert len(result.voters) == 1 and result.voters[0].option == REJECT
    assert result.voters[0].binding


def test_outcome_rule():
    rule = VoteRule(quorum=3, threshold=0.6667, abstain_counts_toward_quorum=True)
    two_of_three = decide_outcome({APPROVE: 2, REJECT: 1}, rule)
    assert two_of_three.quorum_met and two_of_three.threshold_met
    assert two_of_three.decision == "accept"
    assert decide_outcome({APPROVE: 1, REQUEST_CHANGES: 1, ABSTAIN: 1}, rule).decision == "reject"
    no_abstain = VoteRule(quorum=3, abstain_counts_toward_quorum=False)
    assert decide_outcome({APPROVE: 2, ABSTAIN: 1}, no_abstain).decision == "no_quorum"
    assert decide_outcome({ABSTAIN: 3}, rule).approval_rate is None
    assert decide_outcome({ABSTAIN: 3}, rule).decision == "reject"


def test_rule_from_config_falls_back_to_default():
    cfg = {"vote_rules": {"default": {"quorum": 2, "threshold": 0.5},
                          "breaking_change": {"quorum": 5, "threshold": 0.75,
                                              "abstain_counts_toward_quorum": False}}}
    assert VoteRule.from_config(cfg, "breaking_change").quorum == 5
    assert VoteRule.from_config(cfg, "standard") == VoteRule(2, 0.5, True)
    assert "quorum 5 binding votes" in VoteRule.from_config(cfg, "breaking_change").describe()


# -- properties ----------------------------------------------------------------------
USERS = ["alice", "bob", "carol", "dave", "erin"]
signal_strategy = st.builds(
    Signal,
    user=st.sampled_from(USERS),
    option=st.sampled_from((*OPTIONS, RETRACT)),
    at=st.integers(0, 30).map(at),
    source=st.sampled_from(("reaction", "comment")),
    ref=st.integers(1, 10_000),
    reason=st.sampled_from(("", "why not")),
).filter(lambda s: not (s.source == "reaction" and s.option == RETRACT))


def summary(result):
    return (result.binding, result.non_binding, result.outcome,
            [(v.login, v.option, v.conflicting, v.late_option) for v in result.voters])


@settings(max_examples=200, deadline=None)
@given(st.lists(signal_strategy, max_size=25), st.randoms(), st.integers(0, 40))
def test_any_order_of_the_same_votes_gives_the_same_result(signals, rnd, end):
    shuffled = list(signals)
    rnd.shuffle(shuffled)
    ends = at(end)
    assert summary(run(signals, period_ends=ends)) == summary(run(shuffled, period_ends=ends))


@settings(max_examples=200, deadline=None)
@given(st.lists(signal_strategy, max_size=25), st.lists(signal_strategy, min_size=1, max_size=5))
def test_adding_a_non_binding_vote_never_changes_the_outcome(signals, extra):
    outsiders = [Signal("outsider-" + s.user, s.option, s.at, s.source, s.ref, s.reason)
                 for s in extra]
    before = run(signals)
    after = run(signals + outsiders)
    assert before.outcome == after.outcome
    assert before.binding == after.binding
