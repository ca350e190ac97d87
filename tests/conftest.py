"""Shared fixtures. Keep this file small: put a concern's fixtures next to its tests."""

from __future__ import annotations

import copy
import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from bot.github.signature import sign
from tests.fake_github import FakeGitHub
from tests.ghsim import GitHubSimulator

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def _load_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def load_payload(event: str, name: str = "payload") -> dict[str, Any]:
    """A copy of ``fixtures/payloads/<event>/<name>.payload.json`` (real GitHub webhook
    payloads, see fixtures/LICENSE-octokit.md); ``name`` is usually the action."""
    folder = FIXTURES / "payloads" / event
    candidates = [folder / f"{name}.payload.json", folder / name, folder / f"{name}.json"]
    for path in candidates:
        if path.is_file():
            return copy.deepcopy(_load_json(path))
    have = sorted(p.name for p in folder.glob("*.json")) if folder.is_dir() else []
    raise FileNotFoundError(
        f"no payload {event}/{name} under {folder}; have {have or 'none'} "
        f"(copy it from ../shared/github-payloads/{event}/)")


def load_api_fixture(name: str) -> list[dict[str, Any]]:
    """A recorded GitHub API scenario from ``fixtures/api/<name>.json`` (a list of
    exchanges: method, path, body, status, response, headers)."""
    return copy.deepcopy(_load_json(FIXTURES / "api" / f"{name}.json"))


@pytest.fixture
def payload() -> Callable[..., dict[str, Any]]:
    """``payload("pull_request", "opened")`` -> a fresh, mutable copy of a real payload."""
    return load_payload


@pytest.fixture
def fake_github() -> FakeGitHub:
    """An empty in-memory repository ``octo-org/governance`` behind the ``GitHubPort``."""
    return FakeGitHub()


@pytest.fixture
def ghsim() -> Iterator[GitHubSimulator]:
    """A started local GitHub simulator on a free port of 127.0.0.1 (``ghsim.base_url``)."""
    with GitHubSimulator() as sim:
        yield sim


@pytest.fixture(autouse=True)
def _checkout_metrics_store_is_private(tmp_path_factory: pytest.TempPathFactory,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A test whose config root is the checkout itself gets a private metrics store, so
    routing records one test writes never change another test's agent health, and the
    checkout's own .cvf/ is never touched. Tests with their own root are unaffected."""
    import bot.handlers.metrics as metrics_handler

    real = metrics_handler.store_path
    private = tmp_path_factory.mktemp("metrics") / "metrics.db"

    def store_path(config: Any) -> Path:
        path = real(config)
        cwd = Path.cwd().resolve()
        return private if path.resolve().is_relative_to(cwd / ".cvf") else path

    monkeypatch.setattr(metrics_handler, "store_path", store_path)


@pytest.fixture
def delivery_logs_flow() -> Iterator[None]:
    """For tests that read the delivery log: make sure no other test left it muted."""
    loggers = [logging.getLogger(name) for name in ("cvf", "cvf.webhook", "cvf.delivery")]
    saved = [(logger, list(logger.filters), logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.filters.clear()
        logger.disabled = False
    yield
    for logger, filters, disabled in saved:
        logger.filters[:] = filters
        logger.disabled = disabled


def post_webhook(url: str, event: str, payload: dict[str, Any] | bytes, *, secret: str,
                 delivery: str | None = None, timeout: float = 60) -> tuple[int, bytes]:
    """POST a signed delivery to ``url``/webhook the way GitHub does: ``(status, body)``,
    error statuses included."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(f"{url}/webhook", data=body, method="POST", headers={
        "X-GitHub-Event": event, "Content-Type": "application/json",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body, secret)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class LocalServer:
    """A WSGI app served by a real threaded server on 127.0.0.1, for end-to-end tests."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """One throw-away PostgreSQL server for the session (tests/pgcluster.py); each test
    takes its own database with ``pg_cluster.new_database(name)``. Skipped only where no
    PostgreSQL binaries exist."""
    from tests import pgcluster

    reason = pgcluster.available()
    if reason:
        pytest.skip(reason)
    with pgcluster.Cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_dsn(pg_cluster: Any) -> str:
    """A fresh, empty database in the session's PostgreSQL server."""
    return str(pg_cluster.new_database(f"t_{uuid.uuid4().hex[:12]}"))
