"""The webhook host: a Flask application factory.

``create_app()`` reads the host's own config (``.github/cvf.yml`` in the working directory,
or ``CVF_CONFIG``) and environment; tests pass a config, a router, a GitHub factory and a
clock instead. Production: ``gunicorn 'bot.app:create_app()'``.

``POST /webhook`` checks the signature on the raw bytes before anything parses them, then
runs the same ``dispatch`` as ``cvf handle``. Handlers recompute state from GitHub, so a
redelivered event changes nothing; the small cache of recent delivery ids only saves the
API calls of an exact repeat.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from bot import jsonlimits
from bot.config import Config, load_config
from bot.errors import CvfError
from bot.events import Event, Router, load_handlers, utcnow
from bot.github.delivery import RepoConfigCache, close_port, dispatch, plan
from bot.github.factory import GitHubFactory, factory_from_config
from bot.github.port import CallStats, GitHubError
from bot.github.signature import verify
from bot.health import Health
from bot.queue.worker import DeliveryQueue
from bot.web import register_blueprints

log = logging.getLogger("cvf.webhook")


@dataclass
class AppState:
    """Everything a request needs, built once per process."""

    config: Config
    router: Router
    clock: Callable[[], datetime]
    secrets: tuple[str, ...]
    configs: RepoConfigCache
    factory_builder: Callable[[], GitHubFactory]
    recent_size: int = 1000
    # The durable queue (scale-out mode): deliveries are stored and run by `cvf worker`.
    queue: DeliveryQueue | None = None
    env: Mapping[str, str] | None = None  # where secrets such as the API token are read
    _factory: GitHubFactory | None = None
    _recent: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def github_factory(self) -> GitHubFactory:
        # Built on first use: /healthz and a misconfigured deployment still answer.
        if self._factory is None:
            self._factory = self.factory_builder()
        return self._factory

    def seen(self, delivery: str) -> bool:
        with self._lock:
            return bool(delivery) and delivery in self._recent

    def remember(self, delivery: str) -> None:
        if not delivery or self.recent_size <= 0:
            return
        with self._lock:
            self._recent[delivery] = None
            self._recent.move_to_end(delivery)
            while len(self._recent) > self.recent_size:
                self._recent.popitem(last=False)


def create_app(config: Config | None = None, *, github_factory: GitHubFactory | None = None,
               clock: Callable[[], datetime] | None = None, router: Router | None = None,
               env: Mapping[str, str] | None = None, recent_deliveries: int = 1000) -> Flask:
    env = os.environ if env is None else env
    if config is None:
        config = load_config(env.get("CVF_CONFIG") or None)
    _setup_logging()
    section = config.section("github")
    secrets = tuple(s for s in (env.get(str(section["webhook_secret_env"]), ""),
                                env.get(str(section["webhook_secret_previous_env"]), "")) if s)
    if not secrets:
        log.warning(json.dumps({"warning": "no webhook secret configured; every delivery "
                                f"will be refused until {section['webhook_secret_env']} is set"}))

    def build_factory() -> GitHubFactory:
        return github_factory or factory_from_config(config, env)

    dsn = env.get(str(config.section("server")["queue_dsn_env"]), "")
    state = AppState(config=config, router=router or load_handlers(), clock=clock or utcnow,
                     secrets=secrets, configs=RepoConfigCache(config),
                     factory_builder=build_factory, recent_size=recent_deliveries,
                     queue=DeliveryQueue(dsn) if dsn else None, env=env)
    app = Flask("bot")
    app.config["MAX_CONTENT_LENGTH"] = int(config.section("server")["max_body_bytes"])
    app.extensions["cvf"] = state

    health = Health(secret_env=str(section["webhook_secret_env"]), has_secret=bool(secrets),
                    factory=lambda: state.github_factory)

    @app.get("/healthz")
    def healthz() -> Response:
        problems = health.problems()
        if problems:
            return _json(503, {"status": "unavailable", "problems": problems,
                               "webhook_secret": bool(state.secrets)})
        return _json(200, {"status": "ok", "webhook_secret": bool(state.secrets)})

    @app.post("/webhook")
    def webhook() -> Response:
        return _handle_delivery(state)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_: Exception) -> Response:
        _log_line(_headers(), status=413, outcome="too_large", started=time.perf_counter())
        limit = app.config["MAX_CONTENT_LENGTH"]
        return _json(413, {"error": f"payload larger than server.max_body_bytes ({limit})"})

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        # Whatever escapes a view (a bug, a library's surprise) still answers JSON with a
        # log line, never Flask's HTML page; HTTP errors (404, redirects) stay as they are.
        if isinstance(exc, HTTPException):
            return exc  # type: ignore[return-value]
        log.exception(json.dumps({"path": request.path, "status": 500,
                                  "outcome": "unexpected", "error": type(exc).__name__}))
        return _json(500, {"error": "internal error; see the bot's log"})

    register_blueprints(app, config, state)
    return app


def _setup_logging() -> None:
    logger = logging.getLogger("cvf")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def _headers() -> dict[str, str]:
    return {"delivery": request.headers.get("X-GitHub-Delivery", ""),
            "event": request.headers.get("X-GitHub-Event", "")}


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _log_line(headers: dict[str, str], *, status: int, outcome: str, started: float,
              action: str | None = None, repo: str = "", handlers: list[str] | None = None,
              stats: CallStats | None = None, error: str | None = None,
              outputs: dict[str, str] | None = None) -> None:
    line: dict[str, Any] = {
        "delivery": headers["delivery"], "event": headers["event"], "action": action,
        "repo": repo, "status": status, "outcome": outcome, "handlers": handlers or [],
        "api_calls": stats.requests if stats else 0, "writes": stats.writes if stats else 0,
        "retries": stats.retries if stats else 0,
        "points": stats.points if stats else 0, "not_modified": stats.not_modified if stats else 0,
        "ms": round((time.perf_counter() - started) * 1000, 1)}
    if outputs:
        line["outputs"] = outputs
    if error:
        line["error"] = error
    (log.error if status >= 500 else log.info)(json.dumps(line))


# Top-level payload fields that every host and handler reads as objects.
_OBJECT_FIELDS = ("sender", "repository", "installation", "organization", "comment", "issue",
                  "pull_request", "review", "workflow_run", "check_run", "check_suite")


def _parse(body: bytes, content_type: str) -> Any:
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8"))
        return jsonlimits.loads(form["payload"][0])
    return jsonlimits.loads(body)


def _enqueue(state: AppState, event: Event, body: bytes, content_type: str,
             reply: Callable[..., Response], meta: dict[str, Any]) -> Response:
    """Scale-out mode: store the delivery durably and answer; a worker runs it."""
    assert state.queue is not None
    raw = body.decode("utf-8") if content_type.startswith("application/json") else None
    try:
        status, delivery = state.queue.submit(event.delivery_id, event.name, event.payload, raw)
    except Exception as exc:  # PostgreSQL down: say so, GitHub shows the failed delivery
        return reply(503, "queue_unavailable",
                     {"error": "the delivery queue is unavailable; redeliver later"},
                     error=f"{type(exc).__name__}: {exc}", **meta)
    if status == "duplicate":
        return reply(200, "duplicate", {"status": "duplicate"}, **meta)
    return reply(202, "queued", {"status": "queued", "queued_as": delivery}, **meta)


def _handle_delivery(state: AppState) -> Response:
    started = time.perf_counter()
    headers = _headers()

    def reply(status: int, outcome: str, body: dict[str, Any], **extra: Any) -> Response:
        _log_line(headers, status=status, outcome=outcome, started=started, **extra)
        return _json(status, {"delivery": headers["delivery"], **body})

    if not state.secrets:
        return reply(503, "no_secret", {"error": "the bot has no webhook secret configured"})
    body = request.get_data(cache=False)  # raises RequestEntityTooLarge over the limit
    if not verify(body, request.headers.get("X-Hub-Signature-256"), state.secrets):
        return reply(401, "bad_signature",
                     {"error": "missing or invalid X-Hub-Signature-256"})
    try:
        payload = _parse(body, request.content_type or "")
    except jsonlimits.TooDeep as exc:
        return reply(400, "too_deep", {"error": f"body is not a webhook payload: {exc}"},
                     error=str(exc))
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return reply(400, "bad_body", {"error": "body is not a JSON webhook payload"})
    if not isinstance(payload, dict):
        return reply(400, "bad_body", {"error": "payload must be a JSON object"})
    misshapen = next((k for k in _OBJECT_FIELDS if payload.get(k) is not None
                      and not isinstance(payload[k], dict)), None)
    if misshapen:
        return reply(400, "bad_body", {"error": f"payload field {misshapen!r} must be an object"})
    if not headers["event"]:
        return reply(400, "bad_body", {"error": "missing X-GitHub-Event header"})
    if headers["event"] == "ping":
        return reply(200, "pong", {"status": "pong"})
    state.configs.note_push(headers["event"], payload)
    event = Event(name=headers["event"], payload=payload, config=state.config,
                  delivery_id=headers["delivery"], now=state.clock())
    meta: dict[str, Any] = {"action": event.action, "repo": event.repo}
    if state.seen(headers["delivery"]):
        return reply(200, "duplicate", {"status": "duplicate"}, **meta)
    probe = plan(event, state.router)
    if probe is not None:
        if probe.status == "ignored":
            return reply(200, "ignored", {"status": "ignored"}, **meta)
        return reply(202, "no_handler", {"status": "no handler"}, **meta)
    if state.queue is not None:
        return _enqueue(state, event, body, request.content_type or "", reply, meta)
    stats: CallStats | None = None
    try:
        github = state.github_factory(event.repo, event.installation_id)
    except CvfError as exc:  # the deployment's own credentials are missing or broken
        return reply(500, "bot_misconfigured", {"error": "the bot is misconfigured; see its log"},
                     error=str(exc), **meta)
    try:
        stats = github.stats
        event.config = state.configs.get(github, payload)
        outcome = dispatch(event, github, state.router)
    except CvfError as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        return reply(422, "config_error", {"error": "invalid configuration",
                                           "problems": problems},
                     stats=stats, error=" | ".join(problems), **meta)
    except GitHubError as exc:
        return reply(502, "github_error", {"error": str(exc)}, stats=stats, error=str(exc),
                     **meta)
    finally:
        close_port(github)
    meta.update(handlers=outcome.handlers, stats=stats, outputs=event.outputs)
    if outcome.status == "failed":
        return reply(500, "handler_error", {"error": "a handler failed; see the bot's log"},
                     error=" | ".join(outcome.errors), **meta)
    state.remember(headers["delivery"])
    return reply(200, outcome.status, {"status": outcome.status,
                                       "handlers": outcome.handlers}, **meta)

