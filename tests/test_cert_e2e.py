"""End to end: a candidate asks for the foundation exam, submits by pull request and gets a
signed certificate committed — signed webhook deliveries to the real Flask app under a
real WSGI server on 127.0.0.1, real PyGithub over HTTP to the local GitHub simulator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.certification.credential import generate_keypair, load_public_key, verify_credential
from bot.certification.exam import draw_exam
from bot.certification.materials import Materials
from bot.config import parse_config
from bot.github.auth import TokenCredentials
from bot.github.factory import AdapterFactory
from tests.conftest import LocalServer, load_payload, post_webhook
from tests.ghsim import GitHubSimulator, Repo

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
REPO = "octo-org/governance"
BOT = "cvf-governance[bot]"
SECRET = "cert-e2e-secret"
CONFIG = "certification:\n  issuer: {id: 'https://github.com/octo-org', name: Octo}\n"
PRIVATE, PUBLIC = generate_keypair()


def deliver(url: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    payload["repository"]["full_name"] = REPO
    payload["repository"]["default_branch"] = "main"
    payload["repository"]["html_url"] = f"https://github.com/{REPO}"
    payload.pop("installation", None)
    status, body = post_webhook(url, name, payload, secret=SECRET, timeout=30)
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


@pytest.fixture
def world(ghsim: GitHubSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Repo, str]]:
    bank = (ROOT / "certification/questions/foundation.yml").read_text("utf-8")
    monkeypatch.setenv("CVF_CERT_ANSWER_KEY", "level: foundation\nanswers:\n" + "".join(
        f"  {qid}: a\n" for qid in re.findall(r"- id: (F-\d{3})", bank)))
    monkeypatch.setenv("CVF_CERT_SIGNING_KEY", PRIVATE.decode())
    repo = ghsim.repo(REPO)
    repo.put_file(".github/cvf.yml", CONFIG)
    for path in (ROOT / "certification").rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".pem") and "submissions" not in path.parts:
            repo.put_file(str(path.relative_to(ROOT)), path.read_text("utf-8"))
    ghsim.set_token("bot-token", BOT)
    factory = AdapterFactory(TokenCredentials("bot-token"), api_url=ghsim.base_url,
                             bot_login=BOT, attempts=1, max_wait=1, seconds_between_writes=None)
    app = create_app(parse_config(""), github_factory=factory,
                     env={"CVF_WEBHOOK_SECRET": SECRET})
    server = LocalServer(app)
    try:
        yield repo, server.url
    finally:
        server.close()


def test_request_submit_by_pull_request_and_certificate(world):
    repo, url = world
    repo.add_issue(1, author="alice", title="Exam request: foundation")
    request = repo.add_comment(1, "alice", "/cert request foundation")
    payload = load_payload("issue_comment", "created")
    payload["issue"]["number"] = 1
    payload["comment"].update(id=request.id, body=request.body, user={"login": "alice"})
    payload["sender"] = {"login": "alice"}
    deliver(url, "issue_comment", payload)
    exam = [c.body for c in repo.comments_on(1) if c.user == BOT and "cvf:cert-exam" in c.body]
    assert len(exam) == 1 and "CVF Foundation exam — attempt 1 for @alice" in exam[0]
    registry = json.loads(repo.file_text("certification/registry.json") or "{}")
    assert [a["status"] for a in registry["attempts"]] == ["open"]

    materials = Materials(parse_config(CONFIG).section("certification"),
                          lambda p: (ROOT / p).read_text("utf-8"))
    level = materials.program.level("foundation")
    paper = draw_exam(materials.bank("foundation"), level, "alice", 1, 4)
    answers = "".join(f"  {item.question_id}: "
                      f"{next(c.letter for c in item.choices if c.option == 'a')}\n"
                      for item in paper.items)
    pull = repo.add_pull(author="alice", files={
        "certification/submissions/alice/foundation.yml":
            "level: foundation\nattempt: 1\nanswers:\n" + answers})
    payload = load_payload("pull_request", "opened")
    payload["number"] = payload["pull_request"]["number"] = pull.number
    payload["sender"] = {"login": "alice"}
    deliver(url, "pull_request", payload)

    result = [c.body for c in repo.comments_on(pull.number)
              if c.user == BOT and "cvf:cert-result" in c.body]
    assert len(result) == 1 and "**passed**" in result[0] and "Score **100/100**" in result[0]
    certificate = repo.file_text("certification/certificates/alice-foundation-1.json")
    assert certificate is not None
    verified = verify_credential(certificate, public_key=load_public_key(PUBLIC),
                                 now=datetime.now(UTC))
    assert verified.ok and verified.login == "alice"
    registry = json.loads(repo.file_text("certification/registry.json") or "{}")
    assert [c["level"] for c in registry["certificates"]] == ["foundation"]


def _comment_payload(number: int, comment: Any) -> dict[str, Any]:
    payload = load_payload("issue_comment", "created")
    payload["issue"]["number"] = number
    payload["comment"].update(id=comment.id, body=comment.body, user={"login": comment.user},
                              html_url=f"https://github.com/{REPO}/issues/{number}"
                                       f"#issuecomment-{comment.id}")
    payload["sender"] = {"login": comment.user}
    return payload


def test_dropped_cert_commands_are_answered_once_by_the_next_comment(world):
    """A `/cert` comment whose delivery was lost is answered when anyone next comments in
    the thread; a redelivery answers nothing again."""
    repo, url = world
    repo.add_issue(1, author="alice", title="Exam request: foundation")
    request = repo.add_comment(1, "alice", "/cert request foundation")  # delivery lost
    typo = repo.add_comment(1, "alice", "/cert reqest foundation")  # delivery lost
    later = repo.add_comment(1, "bob", "Good luck!")
    deliver(url, "issue_comment", _comment_payload(1, later))

    bot = [c.body for c in repo.comments_on(1) if c.user == BOT]
    exam = [b for b in bot if "cvf:cert-exam" in b]
    assert len(exam) == 1 and "CVF Foundation exam — attempt 1 for @alice" in exam[0]
    (reply,) = [b for b in bot if "cvf:cert-reply" in b]
    assert "Did you mean `/cert request`?" in reply and "@alice" in reply
    assert [r.content for r in repo.reactions_on(comment_id=request.id)
            if r.user == BOT] == ["+1"]
    registry = json.loads(repo.file_text("certification/registry.json") or "{}")
    assert [a["status"] for a in registry["attempts"]] == ["open"]

    seen = [(c.id, c.body) for c in repo.comments_on(1)]
    deliver(url, "issue_comment", _comment_payload(1, later))  # redelivered
    deliver(url, "issue_comment", _comment_payload(1, typo))  # the lost one, late
    assert [(c.id, c.body) for c in repo.comments_on(1)] == seen
    assert len(repo.reactions_on(comment_id=request.id)) == 1
    registry = json.loads(repo.file_text("certification/registry.json") or "{}")
    assert [a["status"] for a in registry["attempts"]] == ["open"]
