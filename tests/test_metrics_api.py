"""The metrics API and pages in the Flask app: auth, records in, views out, the stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.app import create_app
from bot.config import parse_config
from bot.events import Router
from bot.web.metrics import create_blueprint
from tests.fake_github import FakeGitHub

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def record(i: int, **over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": f"api-{i}", "timestamp": f"2026-03-10T11:{10 + i:02d}:00Z", "skill": "deploy",
        "agent": "a1", "risk_level": "R1", "decision": "scope_guard", "success": i % 2 == 0,
        "latency_ms": 100.0 * (i + 1), "audit": {"report_posted": True}}
    base.update(over)
    return base


class _State:
    clock = staticmethod(lambda: NOW)
    env = {"CVF_API_TOKEN": TOKEN}


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n  server:\n"
                          "    stream_poll: 1s\n")
    app = Flask("test")
    app.register_blueprint(create_blueprint(config, _State()))
    return app.test_client()


def test_post_needs_the_bearer_token(client: FlaskClient) -> None:
    body = json.dumps(record(1))
    assert client.post("/api/executions", data=body).status_code == 401
    wrong = client.post("/api/executions", data=body,
                        headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert wrong.get_json() == {"error": "missing or wrong bearer token"}
    assert client.post("/api/executions", data=body,
                       headers={"Authorization": TOKEN}).status_code == 401  # no scheme
    assert client.get("/api/metrics").status_code == 401
    assert client.get("/dashboard").status_code == 401


def test_without_a_configured_token_the_api_is_off(tmp_path: Path) -> None:
    class NoToken:
        clock = staticmethod(lambda: NOW)
        env = {"OTHER": "x"}

    app = Flask("test")
    app.register_blueprint(create_blueprint(parse_config(f"metrics:\n  store: {tmp_path}/m"),
                                            NoToken()))
    answer = app.test_client().post("/api/executions", data="{}",
                                    headers={"Authorization": "Bearer "})
    assert answer.status_code == 503
    assert "set CVF_API_TOKEN" in answer.get_json()["error"]


def test_records_in_one_object_a_list_or_jsonl(client: FlaskClient) -> None:
    one = client.post("/api/executions", data=json.dumps(record(0)), headers=AUTH)
    assert one.status_code == 201 and one.get_json() == {"added": 1, "duplicates": 0}
    many = client.post("/api/executions", data=json.dumps([record(1), record(2)]),
                       headers=AUTH)
    assert many.get_json() == {"added": 2, "duplicates": 0}
    jsonl = "\n".join(json.dumps(record(i)) for i in (2, 3)) + "\n"
    again = client.post("/api/executions", data=jsonl, headers=AUTH,
                        content_type="application/x-ndjson")
    assert again.status_code == 201 and again.get_json() == {"added": 1, "duplicates": 1}
    view = client.get("/api/metrics?period=1h", headers=AUTH).get_json()
    assert view["summary"]["total_executions"] == 4
    assert view["summary"]["success_rate"] == 50.0
    assert view["agent_health"]["a1"]["load"] == 4
    assert view["alerts"] == []


def test_bad_records_are_refused_whole_with_the_line(client: FlaskClient) -> None:
    jsonl = json.dumps(record(0)) + "\n" + json.dumps(record(1, risk_level="high")) + "\n"
    answer = client.post("/api/executions", data=jsonl, headers=AUTH)
    assert answer.status_code == 400
    problems = answer.get_json()["problems"]
    assert problems[0] == 'body:2: `risk_level` must be one of R0, R1, R2, R3, got "high"'
    assert client.get("/api/metrics?period=1h", headers=AUTH).get_json()[
        "summary"]["total_executions"] == 0
    empty = client.post("/api/executions", data="  ", headers=AUTH)
    assert empty.status_code == 400 and "empty body" in empty.get_json()["error"]
    broken = client.post("/api/executions", data="[{", headers=AUTH)
    assert "not valid JSON" in broken.get_json()["error"]


def test_bad_period_is_a_400(client: FlaskClient) -> None:
    answer = client.get("/api/metrics?period=1y", headers=AUTH)
    assert answer.status_code == 400 and 'unknown period "1y"' in answer.get_json()["error"]


def test_dashboard_is_the_html_report(client: FlaskClient) -> None:
    client.post("/api/executions", data=json.dumps([record(0), record(1)]), headers=AUTH)
    page = client.get("/dashboard?period=1h", headers=AUTH)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'data-metric="total_executions">2<' in html
    assert "<svg" in html and 'href="?period=7d"' in html
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_public_read_opens_reads_but_never_writes(tmp_path: Path) -> None:
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n  server:\n"
                          "    public_read: true\n")
    app = Flask("test")
    app.register_blueprint(create_blueprint(config, _State()))
    c = app.test_client()
    assert c.get("/dashboard").status_code == 200
    assert c.get("/api/metrics").status_code == 200
    assert c.post("/api/executions", data=json.dumps(record(0))).status_code == 401


def test_stream_sends_new_executions_and_alerts(tmp_path: Path) -> None:
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n  server:\n"
                          "    stream_poll: 1s\n  agents:\n    silent_after: 10m\n")
    app = Flask("test")
    app.register_blueprint(create_blueprint(config, _State()))
    client = app.test_client()
    client.post("/api/executions", data=json.dumps([record(0), record(1)]), headers=AUTH)
    answer = client.get("/api/metrics/stream", headers={**AUTH, "Last-Event-ID": "1"},
                        buffered=False)
    assert answer.mimetype == "text/event-stream"
    text = ""
    for chunk in answer.response:
        text += chunk.decode() if isinstance(chunk, bytes) else chunk
        if "event: alert" in text:
            break
    answer.close()
    assert text.startswith("retry: 1000")
    assert "id: 2\nevent: execution\n" in text and '"id": "api-1"' in text
    assert '"id": "api-0"' not in text  # at or before Last-Event-ID
    assert '"key": "silent:a1"' in text  # a1 last reported at 11:11, 49 minutes ago


def test_the_real_app_mounts_the_blueprint(tmp_path: Path) -> None:
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n")
    app = create_app(config, github_factory=lambda *a, **k: FakeGitHub(), router=Router(),
                     env={"CVF_WEBHOOK_SECRET": "x"})
    c = app.test_client()
    assert c.get("/api/metrics").status_code in (401, 503)
    assert c.get("/healthz").status_code == 200
