"""The dashboard view against numbers computed by hand on a small fixed data set."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.errors import InputError
from bot.metrics.aggregate import agent_health_feed, dashboard, window
from bot.metrics.store import SqliteStore, open_store

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)


def rec(rid: str, ts: str, skill: str, agent: str, risk: str, decision: str, ok: bool,
        latency: float, approval: dict[str, Any] | None = None,
        audit: tuple[bool, bool] = (True, False)) -> str:
    return json.dumps({"id": rid, "timestamp": ts, "skill": skill, "agent": agent,
                       "risk_level": risk, "decision": decision, "success": ok,
                       "error_type": None if ok else "timeout", "latency_ms": latency,
                       "approval": approval,
                       "audit": {"report_posted": audit[0], "approval_recorded": audit[1]},
                       "source": "test"})


FIXED = [
    rec("1", "2026-03-10T11:10:00Z", "deploy", "a1", "R0", "auto_execute", True, 100),
    rec("2", "2026-03-10T11:20:00Z", "deploy", "a1", "R1", "scope_guard", True, 200),
    rec("3", "2026-03-10T11:30:00Z", "migrate", "a2", "R2", "approval_required", True, 300,
        {"required": True, "granted": True, "rejected": False, "approver": "lead",
         "requested_at": "2026-03-10T11:00:00Z", "decided_at": "2026-03-10T11:25:00Z"},
        (True, True)),
    rec("4", "2026-03-10T11:40:00+00:00", "migrate", "a2", "R3", "human_intervention", False,
        400, {"required": True, "granted": False, "rejected": True, "approver": "lead",
              "requested_at": "2026-03-10T11:30:00Z", "decided_at": "2026-03-10T11:35:00Z"},
        (True, False)),
    rec("5", "2026-03-10T12:50:00+01:00", "deploy", "a1", "R2", "approval_required", True, 500,
        {"required": True, "granted": False, "rejected": False, "approver": None,
         "requested_at": "2026-03-10T11:45:00Z", "decided_at": None}, (True, True)),
    rec("6", "2026-03-08T12:00:00Z", "deploy", "a3", "R0", "auto_execute", True, 1000),
]


@pytest.fixture
def store() -> SqliteStore:
    s = open_store(":memory:")
    s.ingest_lines(FIXED)
    return s


def close(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) <= expected * 0.005


def test_last_hour_by_hand(store: SqliteStore) -> None:
    view = dashboard(store, window("1h", now=NOW))
    assert view["period"] == "1h"
    assert (view["since"], view["until"]) == ("2026-03-10T11:01:00Z", "2026-03-10T12:01:00Z")
    summary = view["summary"]
    assert summary["total_executions"] == 5
    assert (summary["success_rate"], summary["error_rate"]) == (80.0, 20.0)
    assert summary["average_latency_ms"] == 300.0
    assert close(summary["p50_latency_ms"], 300)  # nearest rank: 3rd of 5
    assert close(summary["p95_latency_ms"], 500)
    assert close(summary["p99_latency_ms"], 500)
    assert view["risk_distribution"] == {"R0": 1, "R1": 1, "R2": 2, "R3": 1}
    approvals = view["approvals"]
    assert (approvals["total_needed"], approvals["granted"], approvals["rejected"],
            approvals["pending"]) == (3, 1, 1, 1)
    assert approvals["acceptance_rate"] == 33.33
    assert close(approvals["median_time_to_approve_seconds"], 1500)
    assert view["quality_metrics"] == {"audit_completeness": 80.0,
                                       "high_risk_success_rate": 66.67,
                                       "human_approval_acceptance_rate": 50.0}
    assert view["agent_health"]["a1"] == {"load": 3, "load_share": 60.0, "error_rate": 0.0,
                                          "average_latency_ms": 266.7,
                                          "last_execution": "2026-03-10T11:50:00Z"}
    assert view["agent_health"]["a2"]["error_rate"] == 50.0
    assert view["skills"]["migrate"]["error_rate"] == 50.0
    points = view["time_series"]["points"]
    assert view["time_series"]["step_seconds"] == 300
    assert len(points) == 13  # 11:00 (partial) to 12:00, every 5 minutes
    assert sum(p["executions"] for p in points) == 5
    assert [p["executions"] for p in points if p["start"] == "2026-03-10T11:40:00Z"] == [1]
    assert [p["error_rate"] for p in points if p["start"] == "2026-03-10T11:40:00Z"] == [100.0]


def test_longer_periods_include_older_records(store: SqliteStore) -> None:
    assert dashboard(store, window("24h", now=NOW))["summary"]["total_executions"] == 5
    week = dashboard(store, window("7d", now=NOW))
    assert week["summary"]["total_executions"] == 6
    assert week["agent_health"]["a3"]["last_execution"] == "2026-03-08T12:00:00Z"
    assert len(week["time_series"]["points"]) == 29
    month = dashboard(store, window("30d", now=NOW))
    assert month["summary"]["average_latency_ms"] == 416.7
    assert sum(p["executions"] for p in month["time_series"]["points"]) == 6


def test_since_until_window(store: SqliteStore) -> None:
    view = dashboard(store, window(now=NOW, since=datetime(2026, 3, 10, 11, 15, tzinfo=UTC),
                                   until=datetime(2026, 3, 10, 11, 35, tzinfo=UTC)))
    assert view["summary"]["total_executions"] == 2  # 11:20 and 11:30
    up_to = dashboard(store, window(now=NOW, since=datetime(2026, 3, 10, 11, 15, tzinfo=UTC),
                                    until=datetime(2026, 3, 10, 11, 30, tzinfo=UTC)))
    assert up_to["summary"]["total_executions"] == 1  # until is not included: 11:20 only
    assert up_to["until"] == "2026-03-10T11:30:00Z"
    with pytest.raises(InputError, match="must be before"):
        window(now=NOW, since=datetime(2026, 3, 11, tzinfo=UTC),
               until=datetime(2026, 3, 10, tzinfo=UTC))


def test_empty_period_has_counts_of_zero_and_no_rates(store: SqliteStore) -> None:
    view = dashboard(store, window("1h", now=datetime(2025, 1, 1, tzinfo=UTC)))
    assert view["summary"] == {"total_executions": 0, "success_rate": None,
                               "error_rate": None, "average_latency_ms": None,
                               "p50_latency_ms": None, "p95_latency_ms": None,
                               "p99_latency_ms": None}
    assert view["risk_distribution"] == {"R0": 0, "R1": 0, "R2": 0, "R3": 0}
    assert view["approvals"]["acceptance_rate"] is None
    assert set(view["quality_metrics"].values()) == {None}
    assert view["agent_health"] == {}
    assert all(p["executions"] == 0 for p in view["time_series"]["points"])


def test_unknown_period_is_a_clear_error() -> None:
    with pytest.raises(InputError, match='unknown period "2w"'):
        window("2w", now=NOW)


def test_agent_health_feed_for_the_router(store: SqliteStore) -> None:
    feed = agent_health_feed(store, now=NOW, unhealthy_error_rate=20)
    assert feed["a2"].error_rate == 50.0 and not feed["a2"].healthy
    assert feed["a1"].healthy and feed["a1"].executions == 3
    assert "a3" not in feed  # nothing in the last hour
