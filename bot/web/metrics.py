"""Metrics in the webhook app: the API agents report to, the dashboard, a live stream.

- ``POST /api/executions``: one record, a JSON list, or JSONL; bearer token required.
- ``GET /api/metrics?period=24h`` (or ``since``/``until``): the dashboard view as JSON.
- ``GET /dashboard?period=24h``: the same HTML page ``cvf metrics report --format html``
  writes, plus a live feed; ``&drill=decisions&filter=state:pending`` (or ``approvals``,
  ``executions``) adds the items behind a figure, each linked, with the filter used.
- ``GET /api/metrics/stream``: Server-Sent Events, one per new record named by its kind
  (``execution``, ``decision``, ``approval``) and ``alert`` when an alert starts firing;
  resumes from ``Last-Event-ID``.

Reads need the token too unless ``metrics.server.public_read`` is set. The token comes
from the environment variable named by ``server.api_token_env``; without it the API
answers 503 rather than run open. A stream ends after a few minutes and the browser
reconnects by itself, so a long-lived connection never pins a worker for good.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request

from bot import jsonlimits
from bot.config import Config
from bot.durations import parse_duration
from bot.errors import CvfError
from bot.events import utcnow
from bot.metrics.record import RecordError
from bot.templating import render
from bot.web import session
from bot.web.feed import Feed

log = logging.getLogger("cvf.api")
STREAM_LIFETIME = 300.0  # seconds before the server ends a stream (clients reconnect)


def create_blueprint(config: Config, state: Any = None) -> Blueprint:
    from bot.handlers.metrics import store_for

    blueprint = Blueprint("metrics", __name__)
    settings = config.section("metrics")
    token_env = str(config.section("server")["api_token_env"])
    public_read = bool(settings["server"]["public_read"])
    poll = max(0.05, parse_duration(settings["server"]["stream_poll"]).total_seconds())
    clock: Callable[[], datetime] = getattr(state, "clock", None) or utcnow
    environ = getattr(state, "env", None) or os.environ
    feed = Feed(lambda: store_for(config), settings, poll, clock)

    def refuse(write: bool) -> Response | None:
        if not write and public_read:
            return None
        expected = str(environ.get(token_env, ""))
        if not expected:
            return _json(503, {"error": f"the metrics API is off: set {token_env} to a secret "
                                        "token and send it as `Authorization: Bearer <token>`"})
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not write and not given and session.is_valid(
                request.cookies.get(session.COOKIE, ""), expected, time.time()):
            return None  # a browser signed in at /login (reads only)
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            response = _json(401, {"error": "missing or wrong bearer token"})
            response.headers["WWW-Authenticate"] = 'Bearer realm="cvf-metrics"'
            return response
        return None

    @blueprint.post("/api/executions")
    def post_executions() -> Response:
        denied = refuse(write=True)
        if denied:
            return denied
        text = request.get_data(as_text=True)
        lines = _record_lines(text)
        if isinstance(lines, str):
            log.info(json.dumps({"path": request.path, "status": 400, "outcome": "bad_body",
                                 "error": lines}))
            return _json(400, {"error": lines})
        store = store_for(config)
        try:
            result = store.ingest_lines(lines, where="body", default_source="api")
        except RecordError as exc:
            log.info(json.dumps({"path": request.path, "status": 400, "outcome": "bad_records",
                                 "error": exc.message}))
            return _json(400, {"error": exc.message, "problems": exc.problems})
        finally:
            store.close()
        return _json(201 if result.added else 200,
                     {"added": result.added, "duplicates": result.duplicates})

    @blueprint.get("/api/metrics")
    def get_metrics() -> Response:
        denied = refuse(write=False)
        if denied:
            return denied
        try:
            text = _report(config, "json")
        except CvfError as exc:
            return _json(400, {"error": str(exc)})
        return Response(text, status=200, mimetype="application/json")

    @blueprint.get("/dashboard")
    def get_dashboard() -> Response:
        denied = refuse(write=False)
        if denied and _wants_html():
            if denied.status_code == 401:  # a browser: sign in first, then come back
                target = request.full_path.rstrip("?")
                return _see_other(f"/login?next={quote(target, safe='/')}")
            return login_page(status=denied.status_code)
        if denied:
            return denied
        try:
            html = _report(config, "html", served=True)
        except CvfError as exc:
            return Response(f"error: {exc}\n", status=400, mimetype="text/plain")
        response = Response(html, status=200, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data:")
        return response

    def login_page(*, status: int = 200, problem: str = "") -> Response:
        html = render("metrics/login.html.j2", configured=bool(environ.get(token_env)),
                      token_env=token_env, problem=problem, action="/login",
                      next=session.safe_next(request.values.get("next")),
                      hours=session.LIFETIME // 3600)
        response = Response(html, status=status, mimetype="text/html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
        response.headers["Cache-Control"] = "no-store"
        return response

    @blueprint.get("/login")
    def get_login() -> Response:
        return login_page(status=200 if environ.get(token_env) else 503)

    @blueprint.post("/login")
    def post_login() -> Response:
        expected = str(environ.get(token_env, ""))
        if not expected:
            return login_page(status=503)
        given = str(request.form.get("token", ""))
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            return login_page(status=401, problem="That is not the API token.")
        response = _see_other(session.safe_next(request.form.get("next")))
        response.set_cookie(session.COOKIE, session.issue(expected, time.time()),
                            max_age=session.LIFETIME, httponly=True, samesite="Strict",
                            secure=request.is_secure, path="/")
        return response

    @blueprint.post("/logout")
    def post_logout() -> Response:
        response = _see_other("/login")
        response.delete_cookie(session.COOKIE, path="/")
        return response

    @blueprint.get("/api/metrics/stream")
    def stream() -> Response:
        denied = refuse(write=False)
        if denied:
            return denied
        last = request.headers.get("Last-Event-ID") or request.args.get("after")
        start = int(last) if last and last.isdigit() else None
        response = Response(_events(config, feed, start), mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        return response

    def _report(cfg: Config, fmt: str, served: bool = False) -> str:
        from bot.metrics.aggregate import dashboard, parse_moment, window
        from bot.metrics.alerts import evaluate
        from bot.metrics.drilldown import drill
        from bot.metrics.report import render_report

        now = clock()
        since, until = request.args.get("since"), request.args.get("until")
        win = window(request.args.get("period") or settings["default_period"], now=now,
                     since=parse_moment(since, now=now) if since else None,
                     until=parse_moment(until, now=now, what="until") if until else None)
        store = store_for(cfg)
        try:
            view = dashboard(store, win)
            alerts = evaluate(store, settings, now)
            kind = request.args.get("drill")
            items = drill(store, win.since, win.until, kind,
                          request.args.get("filter")) if kind else None
        finally:
            store.close()
        return render_report(view, fmt, alerts=alerts, role=request.args.get("role") or None,
                             served=served, drill=items, unhealthy_error_rate=float(
                                 settings["agents"]["unhealthy_error_rate"]))

    return blueprint


def _events(config: Config, feed: Feed, start: int | None) -> Iterator[str]:
    """SSE frames: new records (id = store sequence; event = their kind) and alerts as
    they start firing. The process's one ``Feed`` watches the store; this stream reads
    only when the feed says it moved."""
    from bot.handlers.metrics import store_for

    store = store_for(config)
    feed.join()
    try:
        seq = store.last_seq() if start is None else start
        firing: set[str] = set()
        yield f"retry: {int(feed.poll * 1000)}\n\n"
        deadline = time.monotonic() + STREAM_LIFETIME
        seen = -1
        while time.monotonic() < deadline:
            now = feed.wait(seen, timeout=feed.poll)
            sent = False
            if now.version != seen:
                seen = now.version
                while now.seq > seq:
                    rows = store.records_after(seq, limit=200)
                    if not rows:
                        break
                    for number, record in rows:
                        kind = record.get("kind") or "execution"  # decision, approval, ...
                        yield f"id: {number}\nevent: {kind}\ndata: {json.dumps(record)}\n\n"
                        seq = number
                        sent = True
                for alert in now.alerts:
                    if alert["key"] not in firing:
                        yield f"event: alert\ndata: {json.dumps(alert)}\n\n"
                        sent = True
                firing = {alert["key"] for alert in now.alerts}
            if not sent:
                yield ": waiting\n\n"
    finally:
        feed.leave()
        store.close()


def _record_lines(text: str) -> list[str] | str:
    """The body as JSONL lines: a JSON object, a JSON list, or JSONL; else an error text."""
    stripped = text.strip()
    if not stripped:
        return "empty body: send one execution record (JSON), a list of them, or JSONL"
    if stripped.startswith("["):
        try:
            items = jsonlimits.loads(stripped, jsonlimits.MAX_DEPTH + 1)  # + the list itself
        except jsonlimits.TooDeep as exc:
            return f"body is not an execution record: {exc}"
        except json.JSONDecodeError as exc:
            return f"body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        return [json.dumps(item) for item in items]
    return stripped.splitlines()


def _see_other(location: str) -> Response:
    """303: the browser follows with a GET (after the login form's POST too)."""
    response = Response(status=303)
    response.headers["Location"] = location
    return response


def _wants_html() -> bool:
    """A browser navigating (it asks for HTML first), not a script asking for JSON."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "text/html" and "text/html" in request.accept_mimetypes.values()


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body) + "\n", status=status, mimetype="application/json")
