"""Whole RFC lifecycles end to end: the webhook app under a real WSGI server, real PyGithub
over HTTP to the local GitHub simulator, signed deliveries built from real payloads, and
a frozen clock shared by the bot and the simulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.commands.rfc_governance import run_tick
from bot.config import parse_config
from bot.events import Router
from bot.github.auth import credentials_from_env
from bot.github.factory import AdapterFactory
from bot.handlers import rfc as handler
from bot.rfc.document import parse_rfc
from bot.rfc.status import STATUS_MARKER
from tests.conftest import LocalServer, load_payload, post_webhook
from tests.ghsim import GitHubSimulator
from tests.ghsim import server as ghsim_server
from tests.ghsim.state import World
from tests.rfc_samples import rfc_text

pytestmark = pytest.mark.e2e

SECRET = "rfc-e2e-secret"
TOKEN = "ghs_rfc_e2e_token"
REPO = "octo-org/governance"
PATH = "rfcs/0005-shared-vocabulary.md"
BOT = "cvf-governance[bot]"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REPO_CONFIG = """\
rfc:
  committee:
    users: [alice, bob]
    teams: [octo-org/rfc-committee]
  vote_rules:
    default: {quorum: 3, threshold: 0.6667}
"""



class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


def rfc_router() -> Router:
    router = Router()
    router.register("pull_request", "opened", "reopened", "synchronize", "edited", "closed")(
        handler.on_pull_request)
    router.register("issue_comment", "created", "edited", "deleted")(handler.on_issue_comment)
    router.register("pull_request_review_comment", "created", "edited", "deleted")(
        handler.on_review_comment)
    return router


class Stage:
    """The simulator, the bot, and helpers that act like the people on the pull request."""

    def __init__(self) -> None:
        # Without TCP_NODELAY every request waits ~40 ms for a delayed ACK; the simulator's
        # owner has been told, until then this test sets it for its own simulator's life.
        self._nagle = getattr(ghsim_server._Handler, "disable_nagle_algorithm", False)
        ghsim_server._Handler.disable_nagle_algorithm = True
        self.clock = Clock()
        self.sim = GitHubSimulator(world=World(clock=self.clock)).start()
        self.sim.set_team("octo-org", "rfc-committee", ["carol"])
        self.repo = self.sim.repo(REPO)
        self.repo.put_file(".github/cvf.yml", REPO_CONFIG)
        env = {"GITHUB_API_URL": self.sim.base_url, "GITHUB_TOKEN": TOKEN,
               "CVF_WEBHOOK_SECRET": SECRET}
        host = parse_config("")
        self.config = parse_config(REPO_CONFIG)
        self.factory = AdapterFactory(credentials_from_env(host.section("github"), env),
                                      api_url=self.sim.base_url, bot_login=BOT, attempts=2,
                                      max_wait=1.0, seconds_between_writes=None)
        app = create_app(host, github_factory=self.factory, clock=self.clock,
                         router=rfc_router(), env=env, recent_deliveries=0)
        self.server = LocalServer(app)
        self.url = self.server.url
        self.deliveries = 0

    def close(self) -> None:
        self.server.close()
        self.sim.stop()
        ghsim_server._Handler.disable_nagle_algorithm = self._nagle

    # -- deliveries -----------------------------------------------------------------
    def deliver(self, event: str, payload: dict[str, Any], delivery: str | None = None) -> int:
        self.deliveries += 1
        return post_webhook(self.url, event, payload, secret=SECRET,
                            delivery=delivery or f"d-{self.deliveries}")[0]

    def _repository(self, payload: dict[str, Any]) -> None:
        payload["repository"]["full_name"] = REPO
        payload["repository"]["name"] = "governance"
        payload["repository"]["owner"]["login"] = "octo-org"
        payload["repository"]["default_branch"] = "main"
        payload.pop("installation", None)

    def pull_event(self, number: int, action: str, sender: str = "writer") -> dict[str, Any]:
        payload = load_payload("pull_request", "opened")
        payload["action"] = action
        payload["number"] = payload["pull_request"]["number"] = number
        payload["sender"]["login"] = sender
        self._repository(payload)
        return payload

    def comment_event(self, number: int, comment_id: int, author: str,
                      action: str = "created") -> dict[str, Any]:
        payload = load_payload("issue_comment", "created")
        payload["action"] = action
        payload["issue"]["number"] = number
        payload["issue"]["pull_request"] = {"url": f"{self.sim.base_url}/repos/{REPO}/pulls/"
                                                   f"{number}"}
        payload["comment"]["id"] = comment_id
        payload["comment"]["user"]["login"] = payload["sender"]["login"] = author
        self._repository(payload)
        return payload

    # -- people -----------------------------------------------------------------------
    def open_pull(self, *, fork: bool = False) -> int:
        self.clock.advance(minutes=1)
        pull = self.repo.add_pull(title="RFC: shared vocabulary", author="writer",
                                  files={PATH: rfc_text()}, head_ref="rfc-5",
                                  head_repo="someone/fork" if fork else None)
        assert self.deliver("pull_request", self.pull_event(pull.number, "opened")) == 200
        return pull.number

    def say(self, number: int, author: str, body: str) -> tuple[int, dict[str, Any]]:
        self.clock.advance(minutes=1)
        comment = self.repo.add_comment(number, author, body)
        payload = self.comment_event(number, comment.id, author)
        assert self.deliver("issue_comment", payload) == 200
        return comment.id, payload

    def react(self, number: int, user: str, content: str) -> None:
        self.clock.advance(minutes=1)
        self.repo.add_reaction(user, content, number=number)

    def tick(self, at: datetime) -> list[str]:
        self.clock.now = at
        lines: list[str] = []
        state = _State(self.config)
        run_tick(state, repo=REPO, now=at, dry_run=False, env={},  # type: ignore[arg-type]
                 factory=self.factory, echo=lines.append)
        return lines

    # -- what people see ----------------------------------------------------------------
    def bot_comments(self, number: int) -> list[str]:
        return [c.body for c in self.repo.comments_on(number) if c.user == BOT]

    def status(self, number: int) -> str:
        (body,) = [b for b in self.bot_comments(number) if b.startswith(STATUS_MARKER)]
        return body

    def bot_reactions(self, comment_id: int) -> list[str]:
        return [r.content for r in self.repo.reactions_on(comment_id=comment_id)
                if r.user == BOT]

    def front(self, ref: str = "rfc-5") -> dict[str, Any]:
        return parse_rfc(self.repo.file_text(PATH, ref) or "", path=PATH).meta


class _State:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.root = "."


@pytest.fixture
def stage() -> Iterator[Stage]:
    s = Stage()
    try:
        yield s
    finally:
        s.close()


def test_lifecycle_to_acceptance(stage: Stage) -> None:
    n = stage.open_pull()
    assert stage.repo.labels_on(n) == ["rfc: draft"]
    opened, _ = stage.say(n, "writer", "Ready for comments.\n/rfc open")
    assert stage.bot_reactions(opened) == ["rocket"]
    ends = stage.clock.now + timedelta(days=14)
    assert stage.front()["status"] == "open_for_comment"
    # Votes: a reaction, a command, and a change of vote by editing the command.
    stage.react(n, "alice", "+1")
    stage.say(n, "bob", "/vote approve")
    carol, payload = stage.say(n, "carol", "/vote reject not yet")
    assert "| reject | 1 | 0 |" in stage.status(n)
    stage.clock.advance(minutes=1)
    stage.repo.comments[carol].body = "/vote approve convinced now"
    stage.repo.comments[carol].updated_at = stage.clock.now
    payload["action"] = "edited"
    assert stage.deliver("issue_comment", payload) == 200
    assert "| approve | 3 | 0 |" in stage.status(n)
    # A blocking concern, raised and resolved.
    stage.say(n, "alice", "/rfc concern naming")
    assert "naming (raised by " in stage.status(n) and "): blocking" in stage.status(n)
    # The period ends on a tick (frozen clock); the committee is mentioned once.
    lines = stage.tick(ends + timedelta(minutes=1))
    assert lines[0] == f"#{n}: open_for_comment -> review (period_end)"
    assert stage.repo.labels_on(n) == ["rfc: review"]
    ended = [b for b in stage.bot_comments(n) if "comment period ended" in b]
    assert len(ended) == 1 and "@alice @bob @octo-org/rfc-committee" in ended[0]
    stage.tick(ends + timedelta(minutes=2))
    assert len([b for b in stage.bot_comments(n) if "comment period ended" in b]) == 1
    refused, _ = stage.say(n, "bob", "/rfc accept")
    assert "unresolved concerns: naming" in stage.bot_comments(n)[-1]
    stage.say(n, "alice", "/rfc resolve naming")
    accept, accept_payload = stage.say(n, "bob", "/rfc accept")
    assert stage.bot_reactions(accept) == ["rocket"]
    assert stage.repo.labels_on(n) == ["rfc: accepted"]
    front = stage.front()
    assert front["status"] == "accepted"
    assert front["decision"]["tally"]["approve"] == 3
    assert front["decision"]["deciders"] == ["alice", "bob", "carol"]
    checks = stage.repo.check_runs_for(stage.repo.pull(n).head_sha, "cvf/rfc")
    assert checks and checks[-1].conclusion == "success"
    # The same delivery again changes nothing at all.
    stage.sim.reset_log()
    assert stage.deliver("issue_comment", accept_payload, delivery="again") == 200
    assert stage.sim.writes() == [], [(w.method, w.path) for w in stage.sim.writes()]


def test_rejection_and_withdrawal(stage: Stage) -> None:
    n = stage.open_pull()
    stage.say(n, "writer", "/rfc open")
    for user, content in (("alice", "-1"), ("bob", "confused"), ("carol", "+1")):
        stage.react(n, user, content)
    stage.say(n, "alice", "/rfc review")
    stage.say(n, "bob", "/rfc reject")
    assert stage.repo.labels_on(n) == ["rfc: rejected"]
    assert stage.front()["decision"]["tally"] == {"approve": 1, "request_changes": 1,
                                                  "reject": 1, "abstain": 0}
    # A second RFC, withdrawn by closing its pull request.
    stage.repo.put_file(PATH, None, "rfc-5")
    m = stage.open_pull()
    stage.say(m, "writer", "/rfc open")
    stage.repo.issue(m).state = "closed"
    assert stage.deliver("pull_request", stage.pull_event(m, "closed")) == 200
    assert stage.repo.labels_on(m) == ["rfc: withdrawn"]


def test_fork_pr_state_lives_in_labels_until_merge(stage: Stage) -> None:
    n = stage.open_pull(fork=True)
    stage.say(n, "writer", "/rfc open")
    for user in ("alice", "bob", "carol"):
        stage.react(n, user, "+1")
    stage.say(n, "alice", "/rfc review")
    stage.say(n, "alice", "/rfc accept")
    assert stage.repo.labels_on(n) == ["rfc: accepted"]
    assert stage.sim.count("PUT", r".*/contents/.*") == 0
    # Merged: the file lands on main and the bot records the decision there.
    stage.repo.put_file(PATH, rfc_text())
    issue = stage.repo.issue(n)
    issue.state = "closed"
    assert issue.pull is not None
    issue.pull.merged = True
    assert stage.deliver("pull_request", stage.pull_event(n, "closed", "alice")) == 200
    front = stage.front("main")
    assert front["status"] == "accepted" and front["decision"]["tally"]["approve"] == 3


def test_two_events_racing_on_one_rfc(stage: Stage) -> None:
    n = stage.open_pull()
    stage.clock.advance(minutes=1)
    first = stage.repo.add_comment(n, "writer", "/rfc open")
    second = stage.repo.add_comment(n, "alice", "/rfc concern scope")
    payloads = [stage.comment_event(n, first.id, "writer"),
                stage.comment_event(n, second.id, "alice")]
    results: list[int] = []
    threads = [threading.Thread(target=lambda p=p: results.append(
        stage.deliver("issue_comment", p))) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [200, 200]
    status = stage.status(n)
    assert "scope (raised by " in status and "): blocking" in status
    assert stage.repo.labels_on(n) == ["rfc: open-for-comment"]
    assert stage.bot_reactions(first.id) == ["rocket"]
    assert stage.bot_reactions(second.id) == ["+1"]
    assert len([b for b in stage.bot_comments(n) if b.startswith(STATUS_MARKER)]) == 1


def test_cli_tick_dry_run_previews_without_writing(stage: Stage, tmp_path: Path) -> None:
    n = stage.open_pull()
    stage.say(n, "writer", "/rfc open")
    later = stage.clock.now + timedelta(days=15)
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text(REPO_CONFIG)
    stage.sim.reset_log()
    env = {**os.environ, "GITHUB_API_URL": stage.sim.base_url, "GITHUB_TOKEN": TOKEN,
           "GITHUB_REPOSITORY": REPO}
    result = subprocess.run(
        [sys.executable, "-c", "from bot.cli import main; main()", "--root", str(tmp_path),
         "rfc", "tick", "--now", later.strftime("%Y-%m-%dT%H:%M:%SZ"), "--dry-run"],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"#{n}: open_for_comment -> review (period_end)" in result.stdout
    assert "(dry run: nothing was written)" in result.stdout
    assert "POST /repos/octo-org/governance/issues/1/labels" in result.stdout
    assert stage.sim.writes() == []
    assert TOKEN not in result.stdout + result.stderr
