"""The lifecycle table: permissions, states and guards, as a committee member would meet them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_config
from bot.rfc.lifecycle import (
    ACCEPTED,
    DRAFT,
    OPEN,
    PERIOD_END,
    POSTPONED,
    REJECTED,
    REVIEW,
    STATES,
    WITHDRAWN,
    Facts,
    Refusal,
    Transition,
    decide,
    help_lines,
    permissions_from_config,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
READY = Facts(now=NOW, quorum_met=True, threshold_met=True, rule_text="quorum 2")


def test_author_opens_a_draft_and_the_period_is_set():
    result = decide(DRAFT, "open", {"author"}, Facts(now=NOW, period_length=timedelta(days=14)))
    assert isinstance(result, Transition)
    assert result.to_state == OPEN
    assert result.period_ends == NOW + timedelta(days=14)


def test_other_user_cannot_open():
    result = decide(DRAFT, "open", set(), Facts(now=NOW))
    assert isinstance(result, Refusal) and result.kind == "not_permitted"
    assert "authors" in result.reason and "committee" in result.reason


def test_accept_needs_review_state():
    result = decide(OPEN, "accept", {"committee"}, READY)
    assert isinstance(result, Refusal) and result.kind == "wrong_state"
    assert "open for comment" in result.reason and "review" in result.reason


@pytest.mark.parametrize("facts, words", [
    (Facts(now=NOW, quorum_met=False, threshold_met=True, rule_text="quorum 3"), "quorum"),
    (Facts(now=NOW, quorum_met=True, threshold_met=False), "threshold"),
    (Facts(now=NOW, quorum_met=True, threshold_met=True, unresolved_concerns=("naming",)),
     "naming"),
    (Facts(now=NOW, quorum_met=True, threshold_met=True, unanswered_threads=2,
           require_answered_threads=True), "2 review thread"),
])
def test_accept_guards(facts, words):
    result = decide(REVIEW, "accept", {"committee"}, facts)
    assert isinstance(result, Refusal) and result.kind == "guard"
    assert words in result.reason


def test_unanswered_threads_do_not_block_unless_configured():
    facts = Facts(now=NOW, quorum_met=True, threshold_met=True, unanswered_threads=2)
    assert isinstance(decide(REVIEW, "accept", {"committee"}, facts), Transition)


def test_accept_and_reject_follow_the_votes():
    assert decide(REVIEW, "accept", {"committee"}, READY).to_state == ACCEPTED  # type: ignore[union-attr]
    refused = decide(REVIEW, "reject", {"committee"}, READY)
    assert isinstance(refused, Refusal) and "threshold" in refused.reason
    losing = Facts(now=NOW, quorum_met=True, threshold_met=False)
    assert decide(REVIEW, "reject", {"committee"}, losing).to_state == REJECTED  # type: ignore[union-attr]


def test_period_end_is_the_bots_and_only_after_the_end():
    ends = NOW - timedelta(seconds=1)
    assert decide(OPEN, PERIOD_END, {"bot"}, Facts(now=NOW, period_ends=ends)).to_state == REVIEW  # type: ignore[union-attr]
    early = decide(OPEN, PERIOD_END, {"bot"}, Facts(now=NOW, period_ends=NOW + timedelta(1)))
    assert isinstance(early, Refusal)
    human = decide(OPEN, PERIOD_END, {"committee"}, Facts(now=NOW, period_ends=ends))
    assert isinstance(human, Refusal) and human.kind == "not_permitted"


def test_bot_cannot_run_user_commands():
    assert isinstance(decide(REVIEW, "accept", {"bot"}, READY), Refusal)


@pytest.mark.parametrize("state", [DRAFT, OPEN, REVIEW])
def test_withdraw_and_postpone_from_any_open_state(state):
    assert decide(state, "withdraw", {"author"}, Facts(now=NOW)).to_state == WITHDRAWN  # type: ignore[union-attr]
    assert decide(state, "postpone", {"committee"}, Facts(now=NOW)).to_state == POSTPONED  # type: ignore[union-attr]


@pytest.mark.parametrize("state", [ACCEPTED, REJECTED, WITHDRAWN])
def test_final_states_accept_no_command(state):
    for command in ("open", "review", "accept", "reject", "postpone", "withdraw", "extend"):
        result = decide(state, command, {"committee", "author"}, READY)
        assert isinstance(result, Refusal), (state, command)


def test_extend_adds_to_the_running_period_and_reopens_review():
    ends = NOW + timedelta(days=2)
    running = decide(OPEN, "extend", {"committee"},
                     Facts(now=NOW, period_ends=ends, duration=timedelta(days=7)))
    assert isinstance(running, Transition) and running.period_ends == ends + timedelta(days=7)
    reopened = decide(REVIEW, "extend", {"committee"},
                      Facts(now=NOW, period_ends=NOW - timedelta(1), duration=timedelta(days=7)))
    assert isinstance(reopened, Transition)
    assert reopened.to_state == OPEN and reopened.period_ends == NOW + timedelta(days=7)


def test_concerns_need_a_name_and_must_exist_to_resolve():
    raised = decide(OPEN, "concern", {"committee"}, Facts(now=NOW, concern="naming"))
    assert isinstance(raised, Transition) and raised.to_state == OPEN
    again = decide(OPEN, "concern", {"committee"},
                   Facts(now=NOW, concern="naming", unresolved_concerns=("naming",)))
    assert isinstance(again, Refusal) and "already" in again.reason
    missing = decide(OPEN, "resolve", {"committee"}, Facts(now=NOW, concern="other"))
    assert isinstance(missing, Refusal) and "no unresolved concern" in missing.reason


def test_unknown_command_is_refused():
    result = decide(OPEN, "merge", {"committee"}, READY)
    assert isinstance(result, Refusal) and result.kind == "unknown"


def test_config_permissions_and_authors_may_open():
    config = parse_config("rfc:\n  authors_may_open: false\n  permissions:\n"
                          "    concern: [binding_voter]\n")
    perms = permissions_from_config(config.rfc)
    assert isinstance(decide(DRAFT, "open", {"author"}, Facts(now=NOW), perms), Refusal)
    assert isinstance(decide(OPEN, "concern", {"binding_voter"},
                             Facts(now=NOW, concern="x"), perms), Transition)
    assert isinstance(decide(OPEN, "concern", {"committee"},
                             Facts(now=NOW, concern="x"), perms), Refusal)
    anyone = permissions_from_config({"permissions": {"review": ["anyone"]}})
    assert isinstance(decide(OPEN, "review", set(), Facts(now=NOW), anyone), Transition)


def test_every_state_is_reachable_from_draft():
    reached = {DRAFT}
    frontier = [DRAFT]
    roles = {"committee", "author", "bot"}
    while frontier:
        state = frontier.pop()
        for command in ("open", "review", PERIOD_END, "accept", "reject", "postpone",
                        "withdraw", "extend"):
            for votes in (True, False):
                facts = Facts(now=NOW, period_ends=NOW, quorum_met=True, threshold_met=votes,
                              duration=timedelta(days=1))
                for role in roles:
                    result = decide(state, command, {role}, facts)
                    if isinstance(result, Transition) and result.to_state not in reached:
                        reached.add(result.to_state)
                        frontier.append(result.to_state)
    assert reached == set(STATES)


def test_help_lists_every_user_command_with_who_may_use_it():
    lines = {line.command: line for line in help_lines()}
    assert "/rfc extend <duration>" in lines
    assert "committee" in lines["/rfc accept"].who
    assert PERIOD_END not in " ".join(lines)
