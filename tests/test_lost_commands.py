"""No command is ever lost: a command whose delivery never came is answered, once, by
the next event about its pull request.

The webhook app with every handler, real PyGithub over HTTP to the simulator. A comment is
written in the simulator and its webhook is dropped (a cancelled Action run, a lost
delivery); an unrelated later event must still answer it, and a redelivery must not
answer it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.events import load_handlers
from bot.github.delivery import RepoConfigCache
from bot.github.ticker import run_ticks
from tests.test_bot_commits import CONFIG, FullStage
from tests.test_rfc_e2e import REPO

pytestmark = pytest.mark.e2e

# The same rules as tests/test_bot_commits.py, but the RFC skill needs a human (R3) and
# a push voids approvals (the default).
R3_CONFIG = CONFIG.replace("  approvals_survive_push: false\n", "").replace(
    "risk_level: R2", "risk_level: R3")


@pytest.fixture
def stage() -> Iterator[FullStage]:
    s = FullStage(R3_CONFIG)
    try:
        yield s
    finally:
        s.close()


def _replies(stage: FullStage, number: int) -> list[str]:
    return [b for b in stage.bot_comments(number) if "cvf:routing-reply" in b]


def test_a_dropped_approve_risk_is_answered_by_the_next_event(stage: FullStage) -> None:
    n = stage.open_pull()
    head = stage.repo.pull(n).head_sha
    assert stage.gate(head).conclusion is None  # R3: waiting for /approve-risk
    stage.clock.advance(minutes=1)
    approval = stage.repo.add_comment(n, "bob", "/approve-risk reviewed the wording").id
    stage.repo.add_comment(n, "manny", "/approve-risk lgtm")
    # Neither comment's webhook is delivered. The title is edited later:
    stage.clock.advance(minutes=1)
    edited = stage.pull_event(n, "edited")
    assert stage.deliver("pull_request", edited) == 200

    assert stage.gate(head).conclusion == "success"
    assert stage.bot_reactions(approval) == ["+1"]
    (refusal,) = _replies(stage, n)
    assert "@manny: only members of committee" in refusal

    # Redelivered, or any later event: nothing is answered twice.
    stage.sim.reset_log()
    assert stage.deliver("pull_request", edited) == 200
    stage.review(n, "rita", head)
    assert stage.sim.writes("POST", r"/reactions$") == []
    assert stage.sim.writes("POST", r"/issues/\d+/comments$") == []
    assert stage.bot_reactions(approval) == ["+1"]
    assert len(_replies(stage, n)) == 1
    assert stage.gate(head).conclusion == "success"


def test_a_dropped_approve_risk_is_judged_by_the_head_it_was_written_on(
        stage: FullStage) -> None:
    n = stage.open_pull()
    stage.clock.advance(minutes=1)
    stage.repo.add_comment(n, "bob", "/approve-risk reviewed")  # delivery lost
    stage.clock.advance(minutes=1)
    text = stage.repo.file_text("rfcs/0005-shared-vocabulary.md", "rfc-5") or ""
    stage.repo.commit_file("rfcs/0005-shared-vocabulary.md", (text + "\nMore.\n").encode(),
                           "rfc-5", "More", "writer")
    assert stage.deliver("pull_request", stage.pull_event(n, "synchronize")) == 200
    pushed = stage.repo.pull(n).head_sha
    # bob approved the code he saw, not the push that came after his comment.
    assert stage.gate(pushed).conclusion is None


def test_the_tick_answers_commands_nobody_delivered(tmp_path: Path) -> None:
    """No later event ever comes: the tick's sweep of recently updated threads answers
    the lost `/approve-risk` on a pull request and the lost `/cert help` on an issue, once."""
    stage = FullStage(R3_CONFIG)
    try:
        stage.repo.put_file(".github/cvf.yml", R3_CONFIG + f"metrics:\n  store: {tmp_path}/m.db\n")
        n = stage.open_pull()
        head = stage.repo.pull(n).head_sha
        stage.clock.advance(minutes=1)
        approval = stage.repo.add_comment(n, "bob", "/approve-risk reviewed").id  # lost
        stage.repo.add_issue(40, author="alice", title="Certification")
        stage.repo.add_comment(40, "alice", "/cert help")  # lost
        configs = RepoConfigCache(parse_config(""))
        assert run_ticks(load_handlers(), stage.factory, [(REPO, None)], configs,
                         stage.clock.advance(minutes=1)) == 0

        assert stage.gate(head).conclusion == "success"
        assert stage.bot_reactions(approval) == ["+1"]
        (help_reply,) = [b for b in stage.bot_comments(40) if "cvf:cert-reply" in b]
        assert "@alice: certification commands:" in help_reply

        stage.sim.reset_log()
        assert run_ticks(load_handlers(), stage.factory, [(REPO, None)], configs,
                         stage.clock.advance(minutes=5)) == 0
        assert stage.sim.writes("POST", r"/(reactions|comments)$") == []
        assert len(stage.bot_comments(40)) == 1
    finally:
        stage.close()
