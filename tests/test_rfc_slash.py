"""The slash-command grammar, as people actually write comments."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rfc.slash import MAX_COMMANDS, parse_commands


def names(body):
    return [(c.kind, c.name, c.argument) for c in parse_commands(body)]


def test_several_commands_case_insensitive():
    body = "Looks good.\n/RFC Open\n/vote Approve  ship it\n/rfc concern Naming  Things\n"
    assert names(body) == [("rfc", "open", ""), ("vote", "approve", "ship it"),
                           ("rfc", "concern", "naming things")]


def test_quotes_code_and_html_comments_are_not_commands():
    body = ("> /rfc accept\n"
            "```\n/rfc reject\n```\n"
            "~~~~\n/rfc withdraw\n~~~~\n"
            "    /rfc postpone\n"
            "<!-- /rfc open\n/rfc review -->\n"
            "see `/rfc accept` inline\n"
            "/rfc status\n")
    assert names(body) == [("rfc", "status", "")]


def test_unterminated_fence_hides_the_rest():
    assert names("```\n/rfc accept\n") == []


def test_vote_options_and_retract():
    body = "/vote request-changes needs tests\n/vote request_changes\n/vote retract\n/vote abstain"
    assert [c.name for c in parse_commands(body)] == [
        "request_changes", "request_changes", "retract", "abstain"]


def test_extend_parses_duration_and_reports_bad_ones():
    good, bad, missing = parse_commands("/rfc extend 7d\n/rfc extend two weeks\n/rfc extend")
    assert good.duration == timedelta(days=7) and good.error is None
    assert bad.error == 'expected a duration like "7d", got "two weeks"'
    assert missing.error and "needs a duration" in missing.error


def test_unknown_and_empty_commands_carry_errors():
    unknown, empty, vote = parse_commands("/rfc merge\n/rfc\n/vote maybe")
    assert unknown.error == "`/rfc merge` is not a command"
    assert empty.error and "subcommand" in empty.error
    assert vote.error and "/vote approve" in vote.error


def test_words_that_merely_start_with_the_prefix_are_not_commands():
    assert names("/rfcs are great\n/voter list\npath /rfc open") == []


def test_concern_without_name():
    (cmd,) = parse_commands("/rfc concern")
    assert cmd.error and "concern name" in cmd.error


def test_too_many_commands_are_cut_with_an_error():
    found = parse_commands("\n".join(["/vote approve"] * (MAX_COMMANDS + 5)))
    assert len(found) == MAX_COMMANDS + 1 and found[-1].error


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_parses_without_crashing(text):
    for command in parse_commands(text):
        assert command.kind in ("rfc", "vote")
