"""End to end: the bot under a real WSGI server, real PyGithub over HTTP to the simulator.

Deliveries are real webhook payloads (tests/fixtures/payloads), signed as GitHub signs
them; the assertions read what the simulated GitHub received and stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.config import parse_config
from bot.events import Event, Router
from bot.github.port import CheckRunOutput, GitHubPort
from tests.conftest import LocalServer, load_payload, post_webhook
from tests.ghsim import GitHubSimulator

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("delivery_logs_flow")]

SECRET = "e2e-webhook-secret"
TOKEN = "ghs_e2e_installation_token"
REPO = "Codertocat/Hello-World"
MARKER = "<!-- cvf:e2e -->"


def governance_router() -> Router:
    """Handlers that use every kind of write, recomputing from GitHub each time."""
    router = Router()

    @router.register("issue_comment", "created")
    def on_comment(event: Event, github: GitHubPort) -> None:
        number = event.payload["issue"]["number"]
        people = sorted({c.author for c in github.list_issue_comments(number)
                         if not c.author_is_bot})
        github.upsert_sticky_comment(number, MARKER, "Commenters: " + ", ".join(people))
        github.add_labels(number, ["discussed"])

    @router.register("pull_request", "opened", "synchronize")
    def on_pull(event: Event, github: GitHubPort) -> None:
        pr = github.get_pull(event.payload["number"])
        files = [f.filename for f in github.list_pull_files(pr.number)]
        github.set_check_run(pr.head_sha, "cvf/e2e", status="completed", conclusion="success",
                             output=CheckRunOutput(title="files", summary=", ".join(files)))
        github.update_file("GOVERNANCE.md", github.default_branch(),
                           lambda old: _add_line(old, f"- #{pr.number} {pr.title}"),
                           f"governance: record #{pr.number}")

    return router


def _add_line(old: str | None, line: str) -> str | None:
    lines = (old or "# Log\n").splitlines()
    return None if line in lines else "\n".join([*lines, line]) + "\n"


class Bot:
    """The webhook app served by werkzeug on 127.0.0.1, pointed at the simulator."""

    def __init__(self, sim: GitHubSimulator, *, recent: int = 0, max_wait: str = "2s",
                 credentials: dict[str, str] | None = None) -> None:
        config = parse_config(f"github:\n  retry:\n    attempts: 3\n    max_wait: {max_wait}\n")
        env = {"GITHUB_API_URL": sim.base_url, "CVF_WEBHOOK_SECRET": SECRET,
               **(credentials or {"GITHUB_TOKEN": TOKEN})}
        self.app = create_app(config, router=governance_router(), env=env,
                              recent_deliveries=recent)
        self.server = LocalServer(self.app)
        self.url = self.server.url

    def deliver(self, event: str, payload: dict[str, Any] | bytes, *, delivery: str = "d-1",
                secret: str = SECRET) -> tuple[int, dict[str, Any]]:
        status, body = post_webhook(self.url, event, payload, secret=secret, delivery=delivery,
                                    timeout=30)
        return status, json.loads(body or b"{}")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def world(ghsim: GitHubSimulator) -> GitHubSimulator:
    repo = ghsim.repo(REPO, default_branch="master")
    repo.add_issue(1, title="Spelling error in the README file", author="Codertocat")
    repo.add_comment(1, "Codertocat", "You are totally right! I'll get this fixed right away.")
    repo.add_pull(2, title="Update the README with new information.", author="Codertocat",
                  files={"README.md": "hello\n"}, head_ref="changes")
    return ghsim


@pytest.fixture
def bot(world: GitHubSimulator) -> Iterator[Bot]:
    served = Bot(world)
    yield served
    served.close()


def test_comment_delivery_updates_github(world: GitHubSimulator, bot: Bot) -> None:
    status, body = bot.deliver("issue_comment", load_payload("issue_comment", "created"))
    assert status == 200, body
    repo = world.repo(REPO)
    bot_comments = [c for c in repo.comments_on(1) if c.user == "cvf-governance[bot]"]
    assert [c.body for c in bot_comments] == [f"{MARKER}\nCommenters: Codertocat"]
    assert repo.labels_on(1) == ["discussed"]
    assert not world.errors


def test_redelivery_changes_nothing(world: GitHubSimulator, bot: Bot) -> None:
    payload = load_payload("issue_comment", "created")
    assert bot.deliver("issue_comment", payload, delivery="same-id")[0] == 200
    writes = len(world.writes())
    assert bot.deliver("issue_comment", payload, delivery="same-id")[0] == 200
    new_writes = world.writes()[writes:]
    # GitHub's add-labels is idempotent; the sticky comment is not written again.
    assert [w.path for w in new_writes if "comments" in w.path] == []
    assert len(world.repo(REPO).comments_on(1)) == 2


def test_pull_request_delivery_sets_check_and_commits(world: GitHubSimulator, bot: Bot) -> None:
    status, body = bot.deliver("pull_request", load_payload("pull_request", "opened"))
    assert status == 200, body
    repo = world.repo(REPO)
    runs = repo.check_runs_for(repo.pull(2).head_sha, "cvf/e2e")
    assert len(runs) == 1 and runs[0].conclusion == "success"
    assert "- #2 Update the README with new information." in (
        repo.file_text("GOVERNANCE.md", "master") or "")
    # Redelivered: the check run is updated in place and the file not committed twice.
    assert bot.deliver("pull_request", load_payload("pull_request", "opened"))[0] == 200
    assert len(repo.check_runs_for(repo.pull(2).head_sha, "cvf/e2e")) == 1
    assert world.count("PUT", "/contents/GOVERNANCE.md") == 1


def test_502_and_secondary_rate_limit_are_retried(world: GitHubSimulator, bot: Bot) -> None:
    world.fail(502, times=2, method="POST", path=r"/issues/1/comments$")
    world.secondary_rate_limit(retry_after=0, times=1, method="GET", path=r"/issues/1/comments")
    status, body = bot.deliver("issue_comment", load_payload("issue_comment", "created"))
    assert status == 200, body
    repo = world.repo(REPO)
    assert len([c for c in repo.comments_on(1) if c.user == "cvf-governance[bot]"]) == 1
    assert world.count("POST", r"/issues/1/comments$") == 3


def test_conflicting_commit_is_reread_and_retried(world: GitHubSimulator, bot: Bot) -> None:
    world.repo(REPO).put_file("GOVERNANCE.md", "# Log\n- #1 earlier\n", ref="master")
    world.fail(409, times=1, method="PUT", path="/contents/GOVERNANCE.md")
    status, body = bot.deliver("pull_request", load_payload("pull_request", "opened"))
    assert status == 200, body
    assert world.repo(REPO).file_text("GOVERNANCE.md", "master") == (
        "# Log\n- #1 earlier\n- #2 Update the README with new information.\n")
    assert world.count("GET", "/contents/GOVERNANCE.md") >= 2


def test_the_bots_own_comment_costs_no_api_call(world: GitHubSimulator, bot: Bot) -> None:
    payload = load_payload("issue_comment", "created")
    payload["sender"]["login"] = payload["comment"]["user"]["login"] = "cvf-governance[bot]"
    world.reset_log()
    status, body = bot.deliver("issue_comment", payload)
    assert (status, body["status"]) == (200, "ignored")
    assert world.requests == []


def test_forged_delivery_never_reaches_github(world: GitHubSimulator, bot: Bot) -> None:
    world.reset_log()
    status, _ = bot.deliver("issue_comment", load_payload("issue_comment", "created"),
                            secret="guessed")
    assert status == 401 and world.requests == []


def test_primary_rate_limit_fails_fast_with_a_clear_log(world: GitHubSimulator, bot: Bot,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    world.primary_rate_limit(reset_in=3600, times=-1)
    status, _ = bot.deliver("issue_comment", load_payload("issue_comment", "created"),
                            delivery="limited-1")
    assert status in (500, 502)
    assert "max_wait" in caplog.text and "limited-1" in caplog.text
    assert TOKEN not in caplog.text and SECRET not in caplog.text


def test_cvf_handle_dry_run_writes_nothing(world: GitHubSimulator, tmp_path: Path) -> None:
    payload_file = tmp_path / "event.json"
    payload_file.write_text(json.dumps(load_payload("pull_request", "opened")))
    world.reset_log()
    env = {**os.environ, "GITHUB_API_URL": world.base_url, "GITHUB_TOKEN": TOKEN,
           "GITHUB_WORKSPACE": str(tmp_path), "GITHUB_EVENT_NAME": "", "GITHUB_EVENT_PATH": ""}
    command = [sys.executable, "-c", "from bot.cli import main; main()", "--root",
               str(tmp_path), "handle", "--event", "pull_request", "--payload",
               str(payload_file), "--dry-run"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    assert world.writes() == [], [(w.method, w.path) for w in world.writes()]
    assert "dry run: nothing was written" in result.stdout, result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_app_mode_one_installation_token_for_many_deliveries(world: GitHubSimulator) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    world.add_installation(1, "Codertocat")  # the payloads' installation.id
    bot = Bot(world, credentials={"CVF_APP_ID": "77", "CVF_PRIVATE_KEY": pem})
    try:
        for action in ("opened", "synchronize"):
            status, body = bot.deliver("pull_request", load_payload("pull_request", action),
                                       delivery=f"app-{action}")
            assert status == 200, body
    finally:
        bot.close()
    assert world.count("POST", "/app/installations/1/access_tokens") == 1
    repo = world.repo(REPO)
    assert len(repo.check_runs_for(repo.pull(2).head_sha, "cvf/e2e")) == 1


def test_post_dropped_after_the_write_is_not_repeated(world: GitHubSimulator, bot: Bot) -> None:
    world.drop(after_write=True, method="POST", path=r"/issues/1/comments$")
    payload = load_payload("issue_comment", "created")
    status, _ = bot.deliver("issue_comment", payload, delivery="dropped")
    assert status == 500  # the bot cannot tell whether the comment was made
    repo = world.repo(REPO)
    assert len([c for c in repo.comments_on(1) if c.user == "cvf-governance[bot]"]) == 1
    assert bot.deliver("issue_comment", payload, delivery="dropped")[0] == 200  # redelivery
    assert len([c for c in repo.comments_on(1) if c.user == "cvf-governance[bot]"]) == 1
