"""Metrics inform routing on pull requests: an agent failing in the metrics store is
ranked after healthy ones by the `cvf/routing` gate, and the report says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import parse_config
from bot.events import Event, load_handlers
from bot.handlers import routing as routing_handler
from bot.handlers.metrics import store_health
from bot.metrics.store import open_store
from tests.conftest import load_payload
from tests.fake_github import FakeGitHub

CONFIG = """
routing:
  agents:
    - {id: alpha, capabilities: [deploy], capacity: 4}
    - {id: beta, capabilities: [deploy], capacity: 4}
  skills:
    - {id: deploy-prod, risk_level: R2, required_capabilities: [deploy], paths: ["deploy/**"]}
  health_bound: 0.1
metrics:
  store: store.db
"""


def seed(path: Path, agent: str, *, failures: int, successes: int) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    records = [{"timestamp": now.isoformat(), "skill": "deploy-prod", "agent": agent,
                "risk_level": "R2", "decision": "approval_required", "success": ok,
                "error_type": None if ok else "timeout", "latency_ms": 100,
                "approval": None, "audit": {"report_posted": True, "approval_recorded": True},
                "source": "test", "id": f"{agent}-{i}"}
               for i, ok in enumerate([False] * failures + [True] * successes)]
    store = open_store(path)
    try:
        store.add_many(records)
    finally:
        store.close()


def test_store_health_reads_last_hour_error_rates(tmp_path: Path) -> None:
    config = parse_config(CONFIG, root=tmp_path)
    assert store_health(config) == {}  # no store yet: nothing says an agent is unhealthy
    seed(tmp_path / "store.db", "alpha", failures=5, successes=5)
    seed(tmp_path / "store.db", "beta", failures=0, successes=10)
    assert store_health(config) == {"alpha": 0.5, "beta": 0.0}


def test_routing_gate_prefers_the_healthy_agent_and_says_why(tmp_path: Path) -> None:
    seed(tmp_path / "store.db", "alpha", failures=8, successes=2)
    gh = FakeGitHub(bot_login="cvf-governance[bot]")
    gh.add_pull(7, files={"deploy/app.yml": "x"}, author="author")
    payload = load_payload("pull_request", "opened")
    payload["repository"]["full_name"] = gh.repo
    payload["pull_request"]["number"] = payload["number"] = 7
    event = Event(name="pull_request", payload=payload, config=parse_config(CONFIG, root=tmp_path))
    for handler in load_handlers().handlers_for(event):
        if handler.__module__ == routing_handler.__name__:
            handler(event, gh)
    report = "\n".join(c.body for c in gh.bot_comments(7))
    assert "beta" in report and "alpha" in report
    assert report.index("beta") < report.index("alpha")
    assert "Ranked last for an error rate above 10%: alpha" in report
