"""The merge gate survives the bot's own commits, and the bot's checks re-run on request.

The webhook app with every handler, real PyGithub over HTTP to the simulator. An RFC
pull request also changes a path the routing gate guards (R2, an approver must review):
when ``/rfc open`` makes the bot commit the front matter, the new head must carry every
check the bot owns, and the approval given before the bot's commit must still count.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.app import create_app
from bot.config import parse_config
from bot.events import load_handlers
from tests.conftest import LocalServer, load_payload
from tests.test_rfc_e2e import REPO, SECRET, Stage

pytestmark = pytest.mark.e2e

CONFIG = """\
rfc:
  committee:
    users: [alice, bob, carol]
  vote_rules:
    default: {quorum: 2, threshold: 0.5}
routing:
  approvals_survive_push: false
  agents:
    - {id: doc-bot, capabilities: [write]}
  skills:
    - {id: rfc-docs, risk_level: R2, required_capabilities: [write], paths: [rfcs/]}
  roles:
    approval_manager: {users: [rita]}
"""


class FullStage(Stage):
    """``tests.test_rfc_e2e.Stage`` serving every handler the bot registers, with the
    repository config ``config``."""

    def __init__(self, config: str = CONFIG) -> None:
        super().__init__()
        self.repo.put_file(".github/cvf.yml", config)
        self.config = parse_config(config)
        self.server.close()
        env = {"GITHUB_API_URL": self.sim.base_url, "CVF_WEBHOOK_SECRET": SECRET}
        app = create_app(parse_config(""), github_factory=self.factory, clock=self.clock,
                         router=load_handlers(), env=env, recent_deliveries=0)
        self.server = LocalServer(app)
        self.url = self.server.url

    def review(self, number: int, login: str, sha: str) -> None:
        self.clock.advance(minutes=1)
        self.repo.add_review(number, login, "APPROVED", commit_id=sha)
        payload = load_payload("pull_request_review", "submitted")
        payload["pull_request"]["number"] = number
        payload["pull_request"]["base"]["repo"]["full_name"] = REPO
        payload["pull_request"]["head"]["repo"]["full_name"] = REPO
        payload["sender"]["login"] = payload["review"]["user"]["login"] = login
        self._repository(payload)
        assert self.deliver("pull_request_review", payload) == 200

    def gate(self, sha: str) -> Any:
        runs = self.repo.check_runs_for(sha, "cvf/routing")
        return runs[-1] if runs else None

    def check_event(self, kind: str, number: int, name: str = "cvf/routing") -> dict[str, Any]:
        payload = load_payload(kind, "rerequested")
        head = self.repo.pull(number).head_sha
        pulls = [{"number": number, "head": {"sha": head}}]
        if kind == "check_run":
            payload["check_run"]["name"] = name
            payload["check_run"]["head_sha"] = head
            payload["check_run"]["pull_requests"] = pulls
        else:
            payload["check_suite"]["head_sha"] = head
            payload["check_suite"]["pull_requests"] = pulls
        payload["sender"]["login"] = "writer"
        self._repository(payload)
        return payload


@pytest.fixture
def stage() -> Iterator[FullStage]:
    s = FullStage()
    try:
        yield s
    finally:
        s.close()


def test_every_check_and_the_approval_follow_the_bots_commit(stage: FullStage) -> None:
    n = stage.open_pull()
    first = stage.repo.pull(n).head_sha
    assert stage.gate(first).conclusion is None  # R2: waiting for an approval
    stage.review(n, "rita", first)
    assert stage.gate(first).conclusion == "success"

    stage.say(n, "writer", "/rfc open")  # the bot commits the front matter
    head = stage.repo.pull(n).head_sha
    assert head != first and stage.front()["status"] == "open_for_comment"
    assert stage.repo.check_runs_for(head, "cvf/rfc")[-1].conclusion == "success"
    gate = stage.gate(head)
    assert gate is not None, "cvf/routing is missing on the bot's commit"
    assert gate.conclusion == "success", gate.output  # rita's approval still counts

    # A person's push still voids the approval (approvals_survive_push: false).
    text = stage.repo.file_text("rfcs/0005-shared-vocabulary.md", "rfc-5") or ""
    stage.repo.commit_file("rfcs/0005-shared-vocabulary.md", (text + "\nMore.\n").encode(),
                           "rfc-5", "More", "writer")
    assert stage.deliver("pull_request", stage.pull_event(n, "synchronize")) == 200
    pushed = stage.repo.pull(n).head_sha
    assert stage.gate(pushed).conclusion is None


@pytest.mark.parametrize("kind", ["check_run", "check_suite"])
def test_the_rerun_button_re_evaluates_the_check(stage: FullStage, kind: str) -> None:
    n = stage.open_pull()
    head = stage.repo.pull(n).head_sha
    stage.repo.add_review(n, "rita", "APPROVED", commit_id=head)  # its event was lost
    assert stage.gate(head).conclusion is None
    stage.sim.reset_log()
    assert stage.deliver(kind, stage.check_event(kind, n)) == 200
    assert stage.gate(head).conclusion == "success"
    assert any("/check-runs" in w.path for w in stage.sim.writes())


def test_recheck_from_a_comment(stage: FullStage) -> None:
    n = stage.open_pull()
    head = stage.repo.pull(n).head_sha
    stage.repo.add_review(n, "rita", "APPROVED", commit_id=head)  # its event was lost
    stage.clock.advance(minutes=1)
    comment = stage.repo.add_comment(n, "writer", "/recheck").id
    payload = stage.comment_event(n, comment, "writer")
    payload["comment"]["body"] = "/recheck"
    assert stage.deliver("issue_comment", payload) == 200
    assert stage.gate(head).conclusion == "success"
    assert "+1" in stage.bot_reactions(comment)


def test_a_late_vote_is_judged_by_the_state_when_it_was_written(stage: FullStage) -> None:
    n = stage.open_pull()
    stage.say(n, "writer", "/rfc open")
    stage.say(n, "alice", "/vote approve")
    stage.clock.advance(minutes=1)
    late = stage.repo.add_comment(n, "bob", "/vote approve")  # its delivery is delayed
    stage.tick(stage.clock.now + timedelta(days=15))  # the period ends
    stage.say(n, "carol", "/rfc accept")
    assert stage.repo.labels_on(n) == ["rfc: accepted"]
    assert stage.deliver("issue_comment", stage.comment_event(n, late.id, "bob")) == 200
    replies = [b for b in stage.bot_comments(n) if b.startswith("<!-- cvf:rfc-vote:")]
    assert replies == [], replies
    assert "+1" in stage.bot_reactions(late.id)
