"""Secrets never leave the process: run the webhook app, the CLI and the metrics API with
known secret values through good and bad paths, capture everything they say (logs,
stdout/stderr, HTTP answers, every write the simulated GitHub received) and grep it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask

from bot.app import create_app
from bot.cli import cli
from bot.commands import register_all
from bot.config import parse_config
from bot.events import load_handlers
from bot.github.signature import sign
from bot.web.metrics import create_blueprint
from tests.conftest import LocalServer, load_payload
from tests.ghsim import GitHubSimulator

pytestmark = pytest.mark.e2e
register_all(cli)

REPO = "octo-org/governance"
WEBHOOK_SECRET = "whsec-KNOWN-0a1b2c3d4e5f"
PREVIOUS_SECRET = "whsec-PREVIOUS-9f8e7d6c"
TOKEN = "ghs_KNOWNTOKEN_5a5a5a5a5a5a"
API_TOKEN = "api-KNOWN-7c7c7c7c7c7c"
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_KEY = _KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
BROKEN_KEY = "-----BEGIN PRIVATE KEY-----\nQk9HVVMtS0VZLXNlY3JldC1tYXRlcmlhbA==\n" \
             "-----END PRIVATE KEY-----\n"
RFC = ("---\nrfc: 5\ntitle: Shared vocabulary\ntype: standard\nstatus: draft\n"
       "authors: [writer]\ncreated: 2026-03-01\n---\n\n"
       + "\n\n".join(f"## {s}\n\nWords about {s.lower()}." for s in
                     ("Summary", "Motivation", "Design", "Drawbacks", "Alternatives")) + "\n")


def needles(extra: tuple[str, ...] = ()) -> list[str]:
    """Each secret, and a distinctive piece of each (a secret cut in a log is still a leak)."""
    key_lines = [line for line in PRIVATE_KEY.splitlines() if "-----" not in line]
    out = [WEBHOOK_SECRET, PREVIOUS_SECRET, TOKEN, API_TOKEN, key_lines[5], key_lines[-2],
           "Qk9HVVMtS0VZ", "KNOWNTOKEN", "whsec-KNOWN", "whsec-PREVIOUS", "api-KNOWN", *extra]
    return [n for n in out if n]


class Captured:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, *texts: Any) -> None:
        for text in texts:
            self.parts.append(text if isinstance(text, str) else json.dumps(text, default=str))

    def leaks(self, extra: tuple[str, ...] = ()) -> list[str]:
        text = "\n".join(self.parts)
        return [n for n in needles(extra) if n in text]


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[Captured]:
    caplog.set_level(logging.DEBUG)
    box = Captured()
    yield box


def _seed(sim: GitHubSimulator, *, bad_config: bool = False) -> int:
    repo = sim.repo(REPO)
    repo.put_file(".github/cvf.yml", "rfc: [unclosed\n" if bad_config else
                  "rfc:\n  committee:\n    users: [alice]\n")
    sim.set_team("octo-org", "rfc-committee", ["tina"])
    sim.add_installation(1, "octo-org")
    return repo.add_pull(title="RFC: shared vocabulary <!-- x -->", author="writer",
                         files={"rfcs/0005-shared-vocabulary.md": RFC}, head_ref="rfc-5").number


def _payloads(number: int, comment_id: int) -> list[tuple[str, dict[str, Any]]]:
    pull = load_payload("pull_request", "opened")
    pull["number"] = pull["pull_request"]["number"] = number
    comment = load_payload("issue_comment", "created")
    comment["issue"]["number"] = number
    comment["issue"]["pull_request"] = {"url": ""}
    comment["comment"]["id"] = comment_id
    for p in (pull, comment):
        p["repository"]["full_name"] = REPO
        p["installation"] = {"id": 1}
    return [("pull_request", pull), ("issue_comment", comment)]


class Served:
    def __init__(self, env: dict[str, str]) -> None:
        config = parse_config("github:\n  retry:\n    attempts: 2\n    max_wait: 1s\n")
        self.app = create_app(config, router=load_handlers(), env=env, recent_deliveries=0)
        self.server = LocalServer(self.app)
        self.client = self.app.test_client()

    def post(self, event: str, payload: dict[str, Any], secret: str) -> tuple[int, str]:
        body = json.dumps(payload).encode()
        answer = self.client.post("/webhook", data=body, headers={
            "X-GitHub-Event": event, "X-GitHub-Delivery": f"d-{event}",
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)})
        return answer.status_code, answer.get_data(as_text=True)

    def close(self) -> None:
        self.server.close()


def _exercise(sim: GitHubSimulator, env: dict[str, str], box: Captured) -> list[int]:
    number = _seed(sim)
    comment = sim.repo(REPO).add_comment(number, "mallory", "/rfc accept\n/vote approve")
    served = Served(env)
    statuses = []
    try:
        for event, payload in _payloads(number, comment.id):
            for secret in (WEBHOOK_SECRET, PREVIOUS_SECRET, "wrong-secret"):
                status, text = served.post(event, payload, secret)
                statuses.append(status)
                box.add(text)
        # GitHub failing: errors are logged and answered, with no credential in them.
        sim.fail(500, times=50)
        status, text = served.post(*_payloads(number, comment.id)[1], secret=WEBHOOK_SECRET)
        statuses.append(status)
        box.add(text)
        sim.clear_faults()
        box.add(served.client.get("/healthz").get_data(as_text=True))
    finally:
        served.close()
    return statuses


def _github_side(sim: GitHubSimulator, box: Captured) -> None:
    """Everything the bot wrote to GitHub (comments, checks, files, issues)."""
    for request in sim.writes():
        box.add(request.path, request.body)


def test_token_mode_app_keeps_its_secrets(ghsim: GitHubSimulator, captured: Captured,
                                          caplog: pytest.LogCaptureFixture,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    env = {"CVF_WEBHOOK_SECRET": WEBHOOK_SECRET, "CVF_WEBHOOK_SECRET_PREVIOUS": PREVIOUS_SECRET,
           "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": ghsim.base_url, "CVF_API_TOKEN": API_TOKEN}
    statuses = _exercise(ghsim, env, captured)
    assert 200 in statuses and 401 in statuses and statuses[-1] >= 500, statuses
    assert ghsim.writes(), "the bot wrote nothing, so nothing was checked"
    _github_side(ghsim, captured)
    out = capfd.readouterr()
    captured.add(caplog.text, out.out, out.err)
    assert captured.leaks() == []


def test_app_mode_keeps_the_private_key_and_installation_tokens(
        ghsim: GitHubSimulator, captured: Captured, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    env = {"CVF_WEBHOOK_SECRET": WEBHOOK_SECRET, "CVF_APP_ID": "77",
           "CVF_PRIVATE_KEY": PRIVATE_KEY, "GITHUB_API_URL": ghsim.base_url}
    statuses = _exercise(ghsim, env, captured)
    assert 200 in statuses, statuses
    issued = tuple(ghsim.world.grants)
    assert issued, "no installation token was issued"
    _github_side(ghsim, captured)
    out = capfd.readouterr()
    captured.add(caplog.text, out.out, out.err)
    assert captured.leaks(issued) == []


def test_a_broken_private_key_is_reported_without_its_content(
        ghsim: GitHubSimulator, captured: Captured, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    env = {"CVF_WEBHOOK_SECRET": WEBHOOK_SECRET, "CVF_APP_ID": "77",
           "CVF_PRIVATE_KEY": BROKEN_KEY, "GITHUB_API_URL": ghsim.base_url}
    statuses = _exercise(ghsim, env, captured)
    assert 500 in statuses, statuses  # "the bot is misconfigured; see its log"
    out = capfd.readouterr()
    captured.add(caplog.text, out.out, out.err)
    assert "CVF_PRIVATE_KEY" in caplog.text + out.err  # the log names the variable to fix
    assert captured.leaks() == []


def test_cli_dry_run_and_errors_keep_the_token(ghsim: GitHubSimulator, tmp_path: Path,
                                               captured: Captured,
                                               caplog: pytest.LogCaptureFixture) -> None:
    number = _seed(ghsim)
    comment = ghsim.repo(REPO).add_comment(number, "alice", "/rfc open")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github/cvf.yml").write_text("github:\n  retry:\n    attempts: 2\n"
                                              "    max_wait: 1s\n")
    runner = CliRunner()
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": ghsim.base_url,
           "GITHUB_WORKSPACE": str(tmp_path), "CVF_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "CVF_API_TOKEN": API_TOKEN}
    for event, payload in _payloads(number, comment.id):
        payload.pop("installation")
        file = tmp_path / f"{event}.json"
        file.write_text(json.dumps(payload))
        for extra in (["--dry-run"], []):
            result = runner.invoke(cli, ["--root", str(tmp_path), "handle", "--event", event,
                                         "--payload", file.name, *extra], env=env)
            captured.add(result.output)
        ghsim.fail(500, times=50)
        result = runner.invoke(cli, ["--root", str(tmp_path), "handle", "--event", event,
                                     "--payload", file.name], env=env)
        assert result.exit_code != 0
        captured.add(result.output)
        ghsim.clear_faults()
    # App mode with a broken key: the error names the variable, never the key.
    result = runner.invoke(cli, ["--root", str(tmp_path), "handle", "--event", "issue_comment",
                                 "--payload", "issue_comment.json"],
                           env={**env, "GITHUB_TOKEN": "", "CVF_APP_ID": "77",
                                "CVF_PRIVATE_KEY": BROKEN_KEY})
    assert result.exit_code == 1 and "error:" in result.output
    captured.add(result.output)
    _github_side(ghsim, captured)
    captured.add(caplog.text)
    assert captured.leaks() == []


def test_metrics_api_never_echoes_its_token(tmp_path: Path, captured: Captured,
                                            caplog: pytest.LogCaptureFixture) -> None:
    class State:
        env = {"CVF_API_TOKEN": API_TOKEN}

    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n")
    app = Flask("test")
    app.register_blueprint(create_blueprint(config, State()))
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer api-KNOWN-7c7c7c7c7c7"},
                    {"Authorization": f"Bearer {API_TOKEN}x"}):
        for path in ("/api/metrics", "/dashboard"):
            answer = client.get(path, headers=headers)
            captured.add(answer.get_data(as_text=True), dict(answer.headers))
    answer = client.post("/api/executions", data="{not json",
                         headers={"Authorization": f"Bearer {API_TOKEN}"})
    captured.add(answer.get_data(as_text=True))
    off = Flask("off")

    class NoToken:
        env: dict[str, str] = {}

    off.register_blueprint(create_blueprint(config, NoToken()))
    captured.add(off.test_client().get("/api/metrics").get_data(as_text=True))
    captured.add(caplog.text)
    assert captured.leaks() == []
