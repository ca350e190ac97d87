"""End to end: signed webhook deliveries to the real Flask app under a real WSGI server on
127.0.0.1, the bot speaking real PyGithub over HTTP to the local GitHub simulator. What a
contributor sees: the `cvf/routing` check run on the head commit and the sticky report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.app import create_app
from bot.config import parse_config
from bot.github.auth import TokenCredentials
from bot.github.factory import AdapterFactory
from tests.conftest import LocalServer, load_payload, post_webhook
from tests.ghsim import GitHubSimulator, Repo

pytestmark = pytest.mark.e2e

REPO = "octo-org/governance"
BOT = "cvf-governance[bot]"
SECRET = "e2e-webhook-secret"
CONFIG = """\
rfc:
  committee: {users: [chair]}
routing:
  agents:
    - {id: executor-1, capabilities: [deploy, execute]}
    - {id: doc-bot, capabilities: [write]}
  skills:
    - {id: docs, risk_level: R0, required_capabilities: [write], paths: [docs/]}
    - {id: app-code, risk_level: R1, required_capabilities: [execute], paths: [src/]}
    - {id: deploy-prod, risk_level: R2, required_capabilities: [deploy], paths: [deploy/]}
    - {id: workflows, risk_level: R3, required_capabilities: [execute],
       paths: [.github/workflows/]}
  roles:
    approval_manager: {teams: [octo-org/release]}
"""


class Bot:
    def __init__(self, sim: GitHubSimulator, repo: Repo, url: str) -> None:
        self.sim = sim
        self.repo = repo
        self.url = url

    def deliver(self, name: str, action: str, number: int, sender: str = "author",
                **extra: Any) -> dict[str, Any]:
        payload = load_payload(name, action)
        payload["repository"]["full_name"] = REPO
        payload["repository"]["default_branch"] = "main"
        payload["sender"]["login"] = sender
        payload.pop("installation", None)
        if "pull_request" in payload:
            payload["pull_request"]["number"] = number
            payload["number"] = number
        if "issue" in payload:
            payload["issue"]["number"] = number
            payload["issue"]["pull_request"] = {"url": f"{self.sim.base_url}/pulls/{number}"}
        payload.update(extra)
        status, body = post_webhook(self.url, name, payload, secret=SECRET, timeout=30)
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer

    def check(self, sha: str) -> tuple[str, str | None, str]:
        runs = self.repo.check_runs_for(sha, "cvf/routing")
        assert len(runs) == 1, f"expected one cvf/routing run on {sha[:7]}, got {len(runs)}"
        run = runs[0]
        return run.status, run.conclusion, str(run.output.get("title", ""))

    def report(self, number: int) -> str:
        found = [c.body for c in self.repo.comments_on(number)
                 if c.user == BOT and "<!-- cvf:routing -->" in c.body]
        assert len(found) == 1
        return found[0]

    def push(self, number: int, sha: str) -> str:
        pull = self.repo.pull(number)
        self.repo.files[sha] = dict(self.repo.files[pull.head_sha])
        pull.head_sha = sha
        return sha


@pytest.fixture
def bot(ghsim: GitHubSimulator) -> Iterator[Bot]:
    repo = ghsim.repo(REPO)
    repo.put_file(".github/cvf.yml", CONFIG)
    ghsim.set_team("octo-org", "release", ["rita"])
    ghsim.set_token("bot-token", BOT)
    factory = AdapterFactory(TokenCredentials("bot-token"), api_url=ghsim.base_url,
                             bot_login=BOT, attempts=1, max_wait=1,
                             seconds_between_writes=None)
    app = create_app(parse_config(""), github_factory=factory,
                     env={"CVF_WEBHOOK_SECRET": SECRET})
    server = LocalServer(app)
    try:
        yield Bot(ghsim, repo, server.url)
    finally:
        server.close()


def test_r0_and_r1_pull_requests(bot):
    docs = bot.repo.add_pull(author="author", files={"docs/guide.md": "x"})
    answer = bot.deliver("pull_request", "opened", docs.number)
    assert "bot.handlers.routing.on_pull_request" in json.dumps(answer)
    assert bot.check(docs.pull.head_sha) == ("completed", "success", "R0: auto-execute")
    assert "| docs | R0 | 1 | doc-bot |" in bot.report(docs.number)

    code = bot.repo.add_pull(author="author", files={"src/a.py": "x", "setup.cfg": "y"})
    bot.deliver("pull_request", "opened", code.number)
    status, conclusion, title = bot.check(code.pull.head_sha)
    assert (status, conclusion) == ("completed", "failure")
    assert title == "R1: 1 path(s) outside the skills' scope"
    assert "setup.cfg" in bot.report(code.number)


def test_r2_approval_after_a_push_and_a_dismissed_review(bot):
    pr = bot.repo.add_pull(author="author", files={"deploy/prod.yml": "x"})
    first = pr.pull.head_sha
    bot.deliver("pull_request", "opened", pr.number)
    assert bot.check(first)[:2] == ("in_progress", None)

    bot.repo.add_review(pr.number, "rita", commit_id=first)
    bot.deliver("pull_request_review", "submitted", pr.number, sender="rita")
    assert bot.check(first) == ("completed", "success", "R2: approved by rita")

    second = bot.push(pr.number, "b" * 40)
    bot.deliver("pull_request", "synchronize", pr.number)
    assert bot.check(second)[:2] == ("in_progress", None)
    assert "given before the latest push: rita" in bot.report(pr.number)

    review = bot.repo.add_review(pr.number, "rita", commit_id=second)
    bot.deliver("pull_request_review", "submitted", pr.number, sender="rita")
    assert bot.check(second)[1] == "success"

    review.state = "DISMISSED"
    bot.deliver("pull_request_review", "dismissed", pr.number, sender="maintainer")
    assert bot.check(second)[:2] == ("in_progress", None)
    assert "Dismissed reviews: rita" in bot.report(pr.number)


def test_r3_needs_a_committee_members_approve_risk(bot):
    pr = bot.repo.add_pull(author="author", files={".github/workflows/ci.yml": "x"})
    sha = pr.pull.head_sha
    bot.deliver("pull_request", "opened", pr.number)
    assert bot.check(sha) == ("in_progress", None, "R3: waiting for approval by committee")

    denied = bot.repo.add_comment(pr.number, "rita", "/approve-risk")
    bot.deliver("issue_comment", "created", pr.number, sender="rita",
                comment={"id": denied.id, "body": denied.body, "user": {"login": "rita"}})
    assert bot.check(sha)[:2] == ("in_progress", None)
    assert any("@rita: only members of committee" in c.body
               for c in bot.repo.comments_on(pr.number))

    ok = bot.repo.add_comment(pr.number, "chair", "/approve-risk pinned actions reviewed")
    bot.deliver("issue_comment", "created", pr.number, sender="chair",
                comment={"id": ok.id, "body": ok.body, "user": {"login": "chair"}})
    assert bot.check(sha) == ("completed", "success",
                              "R3: human intervention recorded by chair")
    assert "pinned actions reviewed" in bot.report(pr.number)
