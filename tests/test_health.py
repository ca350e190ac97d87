"""``/healthz`` tells the truth, and the ticker's failures are one JSON line each.

The app is built the way gunicorn builds it (``create_app`` with only an environment),
so the real credentials, the real adapter factory and real HTTP to the simulator decide.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime

import pytest

from bot.app import create_app
from bot.config import parse_config
from bot.events import Router
from bot.github.delivery import RepoConfigCache
from bot.github.ticker import run_ticks
from tests.fake_github import FakeGitHub
from tests.ghsim import GitHubSimulator

TOKEN = "ghs_health_token"


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _health(env: dict[str, str]) -> tuple[int, dict[str, object]]:
    app = create_app(parse_config(""), env=env, router=Router())
    answer = app.test_client().get("/healthz")
    return answer.status_code, answer.get_json()


def test_healthy_only_when_the_deployment_can_work(ghsim: GitHubSimulator) -> None:
    ghsim.set_token(TOKEN, "cvf-bot[bot]")
    good = {"CVF_WEBHOOK_SECRET": "s3cret", "GITHUB_TOKEN": TOKEN,
            "GITHUB_API_URL": ghsim.base_url}
    status, body = _health(good)
    assert (status, body["status"]) == (200, "ok"), body

    status, body = _health({k: v for k, v in good.items() if k != "CVF_WEBHOOK_SECRET"})
    assert status == 503
    assert any("CVF_WEBHOOK_SECRET" in p for p in body["problems"]), body

    status, body = _health({k: v for k, v in good.items() if k != "GITHUB_TOKEN"})
    assert status == 503
    assert any("no usable GitHub credentials" in p and "GITHUB_TOKEN" in p
               for p in body["problems"]), body

    status, body = _health({**good, "GITHUB_API_URL": _closed_port_url()})
    assert status == 503
    assert any("not reachable" in p for p in body["problems"]), body

    ghsim.valid_tokens = {TOKEN}  # GitHub answers 401 "Bad credentials" to any other
    status, body = _health({**good, "GITHUB_TOKEN": "ghs_wrong"})
    assert status == 503
    assert any("401" in p for p in body["problems"]), body
    assert "ghs_wrong" not in json.dumps(body)


def test_a_failed_tick_is_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    router = Router()

    @router.tick
    def broken(gh: object, config: object, now: datetime) -> None:
        raise RuntimeError("the store is locked")

    caplog.set_level(logging.INFO, logger="cvf.ticker")
    failures = run_ticks(router, lambda repo, inst=None, **kw: FakeGitHub(repo),
                         [("octo/one", None)], RepoConfigCache(parse_config("")),
                         datetime(2026, 12, 1, tzinfo=UTC))
    assert failures == 1
    (record,) = [r for r in caplog.records if r.name == "cvf.ticker"]
    assert record.exc_info is None  # no traceback
    line = json.loads(record.getMessage())
    assert line["repo"] == "octo/one" and line["error"] == "the store is locked"
    assert line["error_type"] == "RuntimeError" and line["tick"].endswith("broken")
