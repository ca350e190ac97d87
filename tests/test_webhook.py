"""The webhook app as GitHub sees it: signatures, bodies, status codes, redelivery, logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from bot.app import create_app
from bot.config import parse_config
from bot.events import Event, Router
from bot.github.port import GitHubPort
from bot.github.signature import sign
from tests.conftest import load_payload
from tests.fake_github import FakeGitHub

SECRET = "primary-s3cret-value"
OLD_SECRET = "previous-s3cret-value"
ENV = {"CVF_WEBHOOK_SECRET": SECRET, "CVF_WEBHOOK_SECRET_PREVIOUS": OLD_SECRET,
       "GITHUB_TOKEN": "ghp_never_logged_token"}


pytestmark = pytest.mark.usefixtures("delivery_logs_flow")


class Harness:
    def __init__(self, *, max_body: int | None = None, recent: int = 1000) -> None:
        text = f"server:\n  max_body_bytes: {max_body}\n" if max_body else ""
        self.config = parse_config(text)
        self.router = Router()
        self.fakes: dict[str, FakeGitHub] = {}
        self.app = create_app(self.config, github_factory=self.factory, router=self.router,
                              env=ENV, recent_deliveries=recent)
        self.client: FlaskClient = self.app.test_client()

    def factory(self, repo: str, installation_id: int | None = None, *,
                dry_run: bool = False) -> FakeGitHub:
        if repo not in self.fakes:
            fake = FakeGitHub(repo)
            fake.add_issue(1, title="Spelling error in the README file")
            self.fakes[repo] = fake
        return self.fakes[repo]

    def post(self, event: str, body: bytes | dict[str, Any], *, secret: str | None = SECRET,
             delivery: str = "d-1", headers: dict[str, str] | None = None) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                "Content-Type": "application/json", **(headers or {})}
        if secret is not None:
            sent["X-Hub-Signature-256"] = sign(raw, secret)
        return self.client.post("/webhook", data=raw, headers=sent)


def sticky_handler(event: Event, github: GitHubPort) -> None:
    number = event.payload["issue"]["number"]
    github.upsert_sticky_comment(number, "<!-- cvf:test -->", f"seen {event.sender}")


@pytest.fixture
def harness() -> Harness:
    h = Harness()
    h.router.register("issue_comment", "created")(sticky_handler)
    return h


def test_healthz(harness: Harness) -> None:
    answer = harness.client.get("/healthz")
    assert answer.status_code == 200 and answer.json["status"] == "ok"


def test_signed_delivery_runs_the_handler(harness: Harness) -> None:
    answer = harness.post("issue_comment", load_payload("issue_comment", "created"))
    assert answer.status_code == 200, answer.json
    fake = harness.fakes["Codertocat/Hello-World"]
    assert [c.body for c in fake.bot_comments(1)] == ["<!-- cvf:test -->\nseen Codertocat"]
    assert answer.json["handlers"] == ["tests.test_webhook.sticky_handler"]


def test_previous_secret_still_accepted_during_rotation(harness: Harness) -> None:
    answer = harness.post("issue_comment", load_payload("issue_comment", "created"),
                          secret=OLD_SECRET)
    assert answer.status_code == 200


@pytest.mark.parametrize("secret", [None, "wrong-secret", ""])
def test_forged_or_missing_signature_is_401_and_runs_nothing(harness: Harness,
                                                              secret: str | None) -> None:
    answer = harness.post("issue_comment", load_payload("issue_comment", "created"),
                          secret=secret)
    assert answer.status_code == 401
    assert harness.fakes == {}


def test_signature_of_another_body_is_rejected(harness: Harness) -> None:
    payload = load_payload("issue_comment", "created")
    raw = json.dumps(payload).encode()
    answer = harness.client.post("/webhook", data=raw.replace(b"Codertocat", b"Mallory", 1),
                                 headers={"X-GitHub-Event": "issue_comment",
                                          "X-Hub-Signature-256": sign(raw, SECRET)})
    assert answer.status_code == 401


def test_stale_secret_after_rotation_is_rejected() -> None:
    env = {"CVF_WEBHOOK_SECRET": "new-secret"}
    app = create_app(parse_config(""), github_factory=lambda *a, **k: FakeGitHub(),
                     router=Router(), env=env)
    raw = b'{"zen": "hi"}'
    answer = app.test_client().post("/webhook", data=raw, headers={
        "X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(raw, OLD_SECRET)})
    assert answer.status_code == 401


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_malformed_body_is_400(harness: Harness, body: bytes) -> None:
    assert harness.post("issue_comment", body).status_code == 400


def test_missing_event_header_is_400(harness: Harness) -> None:
    raw = b'{"action": "created"}'
    answer = harness.client.post("/webhook", data=raw,
                                 headers={"X-Hub-Signature-256": sign(raw, SECRET)})
    assert answer.status_code == 400


def test_body_over_the_limit_is_413() -> None:
    h = Harness(max_body=2048)
    answer = h.post("issue_comment", b'{"x": "' + b"a" * 4096 + b'"}')
    assert answer.status_code == 413


def test_ping_is_200(harness: Harness) -> None:
    answer = harness.post("ping", load_payload("ping", "payload"))
    assert answer.status_code == 200 and answer.json["status"] == "pong"


def test_event_without_handler_is_202(harness: Harness) -> None:
    assert harness.post("push", load_payload("push", "payload")).status_code == 202
    assert harness.fakes == {}


def test_redelivery_changes_nothing_even_without_the_cache() -> None:
    h = Harness(recent=0)
    h.router.register("issue_comment", "created")(sticky_handler)
    payload = load_payload("issue_comment", "created")
    assert h.post("issue_comment", payload, delivery="same").status_code == 200
    fake = h.fakes["Codertocat/Hello-World"]
    writes = len(fake.stats.write_log)
    assert h.post("issue_comment", payload, delivery="same").status_code == 200
    assert len(fake.stats.write_log) == writes
    assert len(fake.bot_comments(1)) == 1


def test_redelivery_with_cache_skips_the_api_entirely(harness: Harness) -> None:
    payload = load_payload("issue_comment", "created")
    harness.post("issue_comment", payload, delivery="again")
    fake = harness.fakes["Codertocat/Hello-World"]
    requests = fake.stats.requests
    answer = harness.post("issue_comment", payload, delivery="again")
    assert answer.json["status"] == "duplicate" and fake.stats.requests == requests


def test_the_bots_own_comment_is_ignored(harness: Harness) -> None:
    payload = load_payload("issue_comment", "created")
    payload["sender"]["login"] = "cvf-governance[bot]"
    payload["comment"]["user"]["login"] = "cvf-governance[bot]"
    answer = harness.post("issue_comment", payload)
    assert answer.status_code == 200 and answer.json["status"] == "ignored"
    assert harness.fakes == {}


def test_handler_error_is_500_with_delivery_logged_and_no_secret(
        caplog: pytest.LogCaptureFixture) -> None:
    h = Harness()

    @h.router.register("issue_comment")
    def broken(event: Event, github: GitHubPort) -> None:
        raise RuntimeError("boom")

    caplog.set_level(logging.INFO, logger="cvf")
    answer = h.post("issue_comment", load_payload("issue_comment", "created"),
                    delivery="dead-beef-1")
    assert answer.status_code == 500
    text = caplog.text
    assert "dead-beef-1" in text and "boom" in text
    for secret in (SECRET, OLD_SECRET, ENV["GITHUB_TOKEN"]):
        assert secret not in text and secret not in answer.get_data(as_text=True)


def test_one_json_log_line_per_delivery(harness: Harness,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cvf.webhook")
    harness.post("issue_comment", load_payload("issue_comment", "created"), delivery="abc-1")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cvf.webhook"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["delivery"], line["event"], line["action"], line["repo"]) == (
        "abc-1", "issue_comment", "created", "Codertocat/Hello-World")
    assert line["handlers"] == ["tests.test_webhook.sticky_handler"]
    assert line["api_calls"] >= 1 and line["ms"] >= 0


def test_invalid_repository_config_is_a_clear_error(harness: Harness,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    fake = harness.factory("Codertocat/Hello-World")
    fake.put_file(".github/cvf.yml", "rfc:\n  nonsense_key: 1\n", ref="master")
    caplog.set_level(logging.INFO, logger="cvf.webhook")
    answer = harness.post("issue_comment", load_payload("issue_comment", "created"))
    assert answer.status_code == 422
    assert "nonsense_key" in answer.json["problems"][0]
    assert "nonsense_key" in caplog.text
    assert fake.bot_comments(1) == []


def test_repository_config_reaches_the_handler_but_not_host_settings(harness: Harness) -> None:
    seen: list[Any] = []
    harness.router.register("issues", "opened")(lambda e, g: seen.append(e.config))
    fake = harness.factory("Codertocat/Hello-World")
    fake.put_file(".github/cvf.yml",
                  "github:\n  api_url: https://evil.example\n", ref="master")
    answer = harness.post("issues", load_payload("issues", "opened"))
    assert answer.status_code == 200
    assert seen[0].section("github")["api_url"] == "https://api.github.com"


def test_no_secret_configured_refuses_deliveries() -> None:
    app = create_app(parse_config(""), github_factory=lambda *a, **k: FakeGitHub(),
                     router=Router(), env={})
    raw = b"{}"
    answer = app.test_client().post("/webhook", data=raw, headers={
        "X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(raw, "")})
    assert answer.status_code == 503


def test_app_manifest_asks_for_what_the_bot_uses() -> None:
    from pathlib import Path

    from bot.events import load_handlers
    from bot.github import adapter

    manifest = json.loads((Path(__file__).parent.parent / ".github/app-manifest.json")
                          .read_text("utf-8"))
    permissions = manifest["default_permissions"]
    for needed in (adapter.PERM_ISSUES, adapter.PERM_CHECKS, adapter.PERM_CONTENTS):
        name = needed.split(":")[0].replace("-", "_")
        assert permissions.get(name) == "write", needed
    routed = {name for name, _ in load_handlers()._handlers}
    assert routed <= set(manifest["default_events"]) | {"ping"}


def test_secrets_never_reach_logs_or_answers_in_app_mode(
        caplog: pytest.LogCaptureFixture) -> None:
    import responses
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    env = {"CVF_WEBHOOK_SECRET": SECRET, "CVF_APP_ID": "4242", "CVF_PRIVATE_KEY": pem}
    router = Router()
    router.register("pull_request")(lambda event, github: github.get_pull(2))
    app = create_app(parse_config(""), router=router, env=env)
    raw = json.dumps(load_payload("pull_request", "opened")).encode()
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as mock:
        mock.post("https://api.github.com:443/app/installations/1/access_tokens",
                  status=401, json={"message": "A JSON web token could not be decoded"})
        answer = app.test_client().post("/webhook", data=raw, headers={
            "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "app-1",
            "X-Hub-Signature-256": sign(raw, SECRET)})
    assert answer.status_code == 502
    assert "installation token" in answer.json["error"]
    seen = caplog.text + answer.get_data(as_text=True)
    pem_body = [line for line in pem.splitlines() if not line.startswith("-----")]
    assert SECRET not in seen and not any(line in seen for line in pem_body)


def test_a_person_editing_the_bots_comment_is_not_ignored(harness: Harness) -> None:
    seen: list[str] = []
    harness.router.register("issue_comment", "edited")(lambda e, g: seen.append(e.sender))
    payload = load_payload("issue_comment", "edited")
    payload["comment"]["user"]["login"] = "cvf-governance[bot]"
    payload["sender"]["login"] = "mallory"
    answer = harness.post("issue_comment", payload)
    assert answer.status_code == 200 and seen == ["mallory"]
