"""One person's flood of commands cannot break an RFC for others (issue #14).

The webhook app under a real WSGI server, real PyGithub over HTTP to the GitHub
simulator: 1,000 refused commands from one non-member (long concerns and plain
accepts; before the fix about 305 froze the RFC) are answered within a small budget, the
status comment stays far below GitHub's 65,536-character limit, and the committee goes
on deciding the RFC. The same at 10,000 commands: the core test in
tests/test_rfc_ledger_bounds.py, and through the app ``python bench/attacks.py flood``
(every sync lists every comment, 100 pages at 10,000, too slow for the suite).
"""

from __future__ import annotations

import pytest

from bot.handlers.answers import BUDGET, quiet_marker
from bot.rfc.record import LEDGER_BUDGET, Ledger
from tests import test_rfc_e2e
from tests.test_rfc_e2e import Stage

pytestmark = pytest.mark.e2e

FLOOD = 1_000
LONG = "x" * 180


stage = test_rfc_e2e.stage  # the same fixture: the simulator and the bot on a stage


def _to(stage: Stage, number: int, login: str) -> list[str]:
    """The bot's comments answering ``login`` (they name them: ``@login: …``)."""
    return [b for b in stage.bot_comments(number) if f"@{login}:" in b]


def test_ten_thousand_refused_commands_leave_the_rfc_working(stage: Stage) -> None:
    n = stage.open_pull()
    stage.say(n, "writer", "/rfc open")
    stage.clock.advance(minutes=1)
    last = 0
    for i in range(FLOOD):
        body = f"/rfc concern {LONG} {i}" if i % 2 else "/rfc accept"
        last = stage.repo.add_comment(n, "mallory", body).id
    # One delivery (GitHub gave up on the others, or they all arrive: the same sync).
    stage.sim.reset_log()
    assert stage.deliver("issue_comment", stage.comment_event(n, last, "mallory")) == 200
    writes = len(stage.sim.writes())
    status = stage.status(n)
    assert len(status) < 30_000
    ledger = Ledger.decode(status)
    assert len(ledger.encode()) <= LEDGER_BUDGET
    assert ledger.base.folded >= FLOOD - 60
    # One coalesced answer, not 10,000; a few writes in all (status, label, answer).
    (answer,) = _to(stage, n, "mallory")
    assert f"{FLOOD - 10} more of your commands here were not done either" in answer
    assert writes <= 6, [(w.method, w.path) for w in stage.sim.writes()]
    # The committee still decides.
    for user, content in (("alice", "+1"), ("bob", "+1"), ("carol", "+1")):
        stage.react(n, user, content)
    stage.say(n, "alice", "/rfc review")
    accepted, payload = stage.say(n, "bob", "/rfc accept")
    assert stage.bot_reactions(accepted) == ["rocket"]
    assert stage.repo.labels_on(n) == ["rfc: accepted"]
    final = stage.status(n)
    assert "## RFC status: Accepted" in final and len(final) < 30_000
    assert stage.front()["decision"]["deciders"] == ["alice", "bob", "carol"]
    # Nothing of the flood is answered again, and a redelivery writes nothing.
    stage.sim.reset_log()
    assert stage.deliver("issue_comment", payload, delivery="again") == 200
    assert stage.sim.writes() == []


def test_answers_to_one_person_stop_at_the_budget_with_one_summary(stage: Stage) -> None:
    n = stage.open_pull()
    stage.say(n, "writer", "/rfc open")
    for i in range(BUDGET + 3):
        stage.say(n, "mallory", f"/rfc accept please {i}")
    answers = _to(stage, n, "mallory")
    assert len(answers) == BUDGET + 1
    assert sum(quiet_marker("mallory") in b for b in answers) == 1
    # Others are answered as before, and a concern raised now shows who raised it.
    stage.say(n, "bob", "/rfc accept")
    assert "not done" in _to(stage, n, "bob")[0]
    stage.say(n, "alice", "/rfc concern naming")
    status = stage.status(n)
    assert "naming (raised by " in status and "): blocking" in status


def test_the_folded_history_still_names_who_decided(stage: Stage) -> None:
    """Concerns raised and resolved 60 times by the committee: the ledger folds, the
    decision and the time the period opened stay known."""
    n = stage.open_pull()
    stage.say(n, "writer", "/rfc open")
    opened = stage.front()["status"]
    assert opened == "open_for_comment"
    for i in range(30):
        stage.repo.add_comment(n, "alice", f"/rfc concern c{i}")
        stage.repo.add_comment(n, "alice", f"/rfc resolve c{i}")
    stage.clock.advance(minutes=1)
    stage.say(n, "alice", "/rfc review")
    for user in ("alice", "bob", "carol"):
        stage.react(n, user, "+1")
    stage.say(n, "bob", "/rfc accept")
    ledger = Ledger.decode(stage.status(n))
    assert ledger.base.folded > 0
    assert stage.repo.labels_on(n) == ["rfc: accepted"]
    assert stage.front()["decision"]["deciders"] == ["alice", "bob", "carol"]
