"""Alerts fire on the numbers they describe, clear when those go away, and reach GitHub
as one issue per alert key (opened, updated, closed) plus a draft RFC for a failing skill."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import Config, parse_config
from bot.handlers.metrics import metrics_tick, publish_alerts
from bot.metrics.alerts import evaluate
from bot.metrics.store import SqliteStore, open_store
from tests.fake_github import FakeGitHub

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)


def recs(start: datetime, count: int, *, every: timedelta, skill: str = "deploy",
         agent: str = "a1", fail_every: int = 0, latency: float = 100.0,
         risk: str = "R1", prefix: str = "") -> list[str]:
    out = []
    for i in range(count):
        ok = not (fail_every and i % fail_every == 0)
        out.append(json.dumps({
            "id": f"{prefix}{skill}-{agent}-{start.isoformat()}-{i}",
            "timestamp": (start + i * every).isoformat(), "skill": skill, "agent": agent,
            "risk_level": risk, "decision": "scope_guard", "success": ok,
            "latency_ms": latency, "audit": {"report_posted": True}}))
    return out


def settings(text: str = "") -> dict[str, Any]:
    return parse_config(text).section("metrics")


def healthy_hour(store: SqliteStore) -> None:
    # 6h of steady, successful traffic so every window has evidence.
    store.ingest_lines(recs(NOW - timedelta(hours=6), 360, every=timedelta(minutes=1)))


def test_nothing_fires_on_healthy_traffic() -> None:
    store = open_store(":memory:")
    healthy_hour(store)
    assert evaluate(store, settings(), NOW) == []


def test_fast_burn_fires_critical_with_the_numbers_and_clears_when_errors_stop() -> None:
    store = open_store(":memory:")
    healthy_hour(store)
    # The last 10 minutes: deploy fails every other time (50% vs a 1% budget).
    store.ingest_lines(recs(NOW - timedelta(minutes=10), 40, every=timedelta(seconds=15),
                            fail_every=2, prefix="bad-"))
    alerts = {a.key: a for a in evaluate(store, settings(), NOW)}
    alert = alerts["error-budget:skill:deploy"]
    assert alert.severity == "critical"
    # By hand: the 5m window [11:56, 12:01) holds 18 of the new records (9 failed) and 4
    # healthy ones; the 1h window holds all 40 new records and 59 healthy ones.
    assert alert.numbers["errors_short"] == 9 and alert.numbers["executions_short"] == 22
    assert alert.numbers["burn_rate_short"] == 40.91
    assert alert.numbers["errors_long"] == 20 and alert.numbers["executions_long"] == 99
    assert alert.numbers["burn_rate_long"] == 20.2
    assert "skill deploy failed 20 of" in alert.reason and "14.4x" in alert.reason
    assert "error-budget:all" in alerts
    # 30 minutes later the short window is clean again: the alert clears.
    later = NOW + timedelta(minutes=30)
    store.ingest_lines(recs(NOW + timedelta(minutes=1), 29, every=timedelta(minutes=1),
                            prefix="after-"))
    assert [a.key for a in evaluate(store, settings(), later)
            if a.kind == "error_budget" and a.severity == "critical"] == []


def test_burn_rate_needs_enough_executions_and_rules_are_configurable() -> None:
    store = open_store(":memory:")
    store.ingest_lines(recs(NOW - timedelta(minutes=4), 4, every=timedelta(minutes=1),
                            fail_every=1))
    assert evaluate(store, settings(), NOW) == []  # 4 failures < min_executions (20)
    loose = settings("metrics:\n  slo:\n    min_executions: 3\n    burn_rates:\n"
                     "      - {long: 1h, short: 5m, factor: 2, severity: warning}\n")
    alerts = [a for a in evaluate(store, loose, NOW) if a.kind == "error_budget"]
    assert {a.key for a in alerts} == {"error-budget:all", "error-budget:skill:deploy"}
    assert all(a.severity == "warning" for a in alerts)


def test_latency_anomaly_against_the_trailing_window() -> None:
    store = open_store(":memory:")
    start = NOW - timedelta(hours=6, minutes=15)
    for i in range(24):  # 15-minute buckets with slightly different means
        store.ingest_lines(recs(start + timedelta(minutes=15 * i), 5,
                                every=timedelta(minutes=2), latency=100 + (i % 3) * 10,
                                prefix=f"t{i}-"))
    assert [a for a in evaluate(store, settings(), NOW) if a.kind == "latency"] == []
    store.ingest_lines(recs(NOW - timedelta(minutes=10), 5, every=timedelta(minutes=1),
                            latency=900, prefix="slow-"))
    alert = next(a for a in evaluate(store, settings(), NOW) if a.kind == "latency")
    assert alert.key == "latency"
    assert alert.numbers["recent_mean_ms"] == 900.0
    assert alert.numbers["trailing_mean_ms"] == 110.0
    assert alert.numbers["z_score"] is not None and alert.numbers["z_score"] > 3
    assert "standard deviations above the trailing 6h" in alert.reason


def test_overloaded_and_silent_agents() -> None:
    store = open_store(":memory:")
    store.ingest_lines(recs(NOW - timedelta(minutes=10), 30, every=timedelta(seconds=10),
                            agent="busy"))
    store.ingest_lines(recs(NOW - timedelta(hours=5), 3, every=timedelta(minutes=1),
                            agent="quiet"))
    cfg = settings("metrics:\n  agents:\n    overload_max: 20\n")
    alerts = {a.key: a for a in evaluate(store, cfg, NOW)}
    assert alerts["overload:busy"].numbers == {"window": "15m", "executions": 30, "limit": 20,
                                               "errors": 0, "error_rate": 0.0}
    assert alerts["silent:quiet"].numbers["last_execution"] == "2026-03-10T07:02:30Z"
    assert "no execution for 4h58m" in alerts["silent:quiet"].reason
    assert "silent:busy" not in alerts


def config_with(text: str = "") -> Config:
    return parse_config(text)


def test_alert_issues_open_update_and_close(tmp_path: Any) -> None:
    gh = FakeGitHub()
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n")
    store = open_store(tmp_path / "m.db")
    healthy_hour(store)
    store.ingest_lines(recs(NOW - timedelta(minutes=10), 40, every=timedelta(seconds=15),
                            fail_every=2, prefix="bad-"))
    done = publish_alerts(gh, store, config, evaluate(store, config.section("metrics"), NOW),
                          NOW)
    assert done["firing"] == ["error-budget:all", "error-budget:skill:deploy"]
    issue = gh.find_issue("<!-- cvf:metrics-alert:error-budget:skill:deploy -->")
    assert issue is not None and issue.state == "open"
    assert issue.title == "Metrics alert: error budget burning (deploy)"
    assert "burn rate short | 40.91" in issue.body
    assert "cvf: metrics-alert" in gh.labels_on(issue.number)
    # A draft RFC proposes raising deploy from R1 to R2, with the numbers.
    rfc = gh.find_issue("<!-- cvf:metrics-rfc:deploy -->")
    assert rfc is not None
    assert rfc.title == "RFC draft (policy_change): raise skill deploy from R1 to R2"
    assert "type: policy_change" in rfc.body and "skill deploy failed 20 of" in rfc.body
    # Same state again: nothing new is opened.
    opened = len(gh.issues)
    publish_alerts(gh, store, config, evaluate(store, config.section("metrics"), NOW), NOW)
    assert len(gh.issues) == opened
    # Cleared: the issue is closed with a comment, and forgotten.
    done = publish_alerts(gh, store, config, [], NOW + timedelta(hours=7))
    assert done["closed"] == ["error-budget:all", "error-budget:skill:deploy"]
    closed = gh.issues[issue.number]
    assert closed.state == "closed"
    assert "cleared" in gh.comments_on(issue.number)[-1].body
    assert store.alert_issues() == {}


def test_the_tick_reads_the_configured_store(tmp_path: Any) -> None:
    gh = FakeGitHub()
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n  agents:\n"
                          "    overload_max: 5\n")
    store = open_store(tmp_path / "m.db")
    store.ingest_lines(recs(NOW - timedelta(minutes=5), 10, every=timedelta(seconds=20)))
    store.close()
    metrics_tick(gh, config, NOW)
    issue = gh.find_issue("<!-- cvf:metrics-alert:overload:a1 -->")
    assert issue is not None and issue.title == "Metrics alert: agent a1 overloaded"
    off = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n  alerts:\n    enabled: false\n")
    writes = gh.stats.writes
    metrics_tick(gh, off, NOW)
    assert gh.stats.writes == writes
