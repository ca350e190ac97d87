"""Records from GitHub (collect, webhooks) and the data branch that keeps the store
between Action runs, against the in-memory FakeGitHub."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Config, parse_config
from bot.events import Event
from bot.handlers.metrics import collect, on_review, on_workflow_run, sync_pull, sync_push
from bot.metrics.aggregate import dashboard, window
from bot.metrics.facts import approval_record, decision_record
from bot.metrics.store import open_store
from tests.conftest import load_payload
from tests.fake_github import FakeGitHub

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)


def config_for(tmp_path: Path, extra: str = "") -> Config:
    return parse_config(f"metrics:\n  store: {tmp_path}/m.db\n{extra}")


def routed(store: object, number: int, head: str, agent: str | None = "executor-1") -> None:
    """The routing gate's decision on a head, as it stores it."""
    store.add_many([decision_record(  # type: ignore[attr-defined]
        repo="octo-org/governance", number=number, head_sha=head, url=None, skill="deploy",
        risk_level="R1", decision="scope_guard", agent=agent, fallbacks=[],
        approval_role=None, approvers=[], gate="passed", timestamp=NOW - timedelta(hours=4))])


def test_collect_turns_runs_of_routed_heads_into_executions_and_reviews_into_approvals(
        tmp_path: Path) -> None:
    gh = FakeGitHub(now=NOW - timedelta(hours=3))
    gh.add_workflow_run("CI", conclusion="success", created_at=NOW - timedelta(hours=2),
                        updated_at=NOW - timedelta(hours=2) + timedelta(seconds=90),
                        head_sha="a1")
    gh.add_workflow_run("CI", conclusion="failure", created_at=NOW - timedelta(minutes=50),
                        updated_at=NOW - timedelta(minutes=48), head_sha="a2")
    gh.add_workflow_run("CI", conclusion="cancelled", created_at=NOW - timedelta(minutes=50),
                        updated_at=NOW - timedelta(minutes=48), head_sha="a2")
    gh.add_workflow_run("CI", conclusion="failure", head_sha="unrouted", actor="alice",
                        created_at=NOW - timedelta(minutes=40))
    gh.add_workflow_run("Deploy", status="in_progress", conclusion=None, head_sha="a1",
                        created_at=NOW - timedelta(minutes=5))
    pull = gh.add_pull(7, author="alice")
    gh.update_pull(7, created_at=NOW - timedelta(hours=2))
    gh.add_review(7, "alice", "APPROVED", submitted_at=NOW - timedelta(hours=1, minutes=50))
    gh.add_review(7, "bob", "CHANGES_REQUESTED", submitted_at=NOW - timedelta(hours=1))
    gh.add_review(7, "carol", "APPROVED", submitted_at=NOW - timedelta(minutes=30))
    gh.add_pull(8, author="dave", labels=["needs-approval"])
    store = open_store(":memory:")
    routed(store, 3, "a1")
    routed(store, 4, "a2")
    config = config_for(tmp_path, "  collect:\n    review_labels: [needs-approval]\n")
    result, runs, pulls = collect(gh, store, config, since=NOW - timedelta(days=1),
                                  pulls=[pull.number])
    assert (runs, pulls) == (5, 2)
    # 2 finished runs of routed heads (no outcome for the cancelled one, no agent for
    # alice's push), bob's rejection and carol's approval (not the author's own).
    assert (result.added, result.duplicates) == (4, 0)
    view = dashboard(store, window("24h", now=NOW))
    assert view["summary"]["total_executions"] == 2
    assert list(view["agent_health"]) == ["executor-1"]
    assert view["skills"]["deploy"]["error_rate"] == 50.0
    assert view["skills"]["deploy"]["average_latency_ms"] == 105000.0  # 90 s and 120 s
    approvals = view["approvals"]
    assert (approvals["granted"], approvals["rejected"]) == (1, 1)
    # carol approved 90 minutes after the pull request was opened
    assert approvals["median_time_to_approve_seconds"] == 5400
    again, _, _ = collect(gh, store, config, since=NOW - timedelta(days=1), pulls=[7])
    assert (again.added, again.duplicates) == (0, 4)


def test_workflow_run_webhook_is_an_execution_of_the_routed_agent_once(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    payload = load_payload("workflow_run", "completed")
    event = Event(name="workflow_run", payload=payload, config=config)
    on_workflow_run(event, FakeGitHub())  # no decision on this head: no agent to credit
    store = open_store(tmp_path / "m.db")
    assert store.count() == 0
    routed(store, 1, payload["workflow_run"]["head_sha"])
    on_workflow_run(event, FakeGitHub())
    on_workflow_run(event, FakeGitHub())  # redelivered
    assert store.count("execution") == 1
    out = next(r for _, r in store.records_after(0) if r["id"].startswith("gh-run-"))
    assert out["id"] == "gh-run-289782451" and out["success"] is True
    assert out["agent"] == "executor-1" and out["latency_ms"] == 25000.0
    assert out["skill"] == "deploy" and out["url"] == payload["workflow_run"]["html_url"]


def test_review_webhook_stores_the_gates_decision_and_approvals_only(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    gh = FakeGitHub(now=NOW)
    gh.add_pull(2, author="octocat")
    gh.add_review(2, "hubot", "APPROVED", submitted_at=NOW + timedelta(minutes=5))
    payload = load_payload("pull_request_review", "submitted")
    event = Event(name="pull_request_review", payload=payload, config=config, now=NOW)
    decision = decision_record(
        repo="o/r", number=2, head_sha="abc", url=None, skill="docs", risk_level="R2",
        decision="approval_required", agent="doc-bot", fallbacks=[], approval_role="m",
        approvers=["hubot"], gate="passed", timestamp=NOW)
    granted = approval_record(state="granted", repo="o/r", number=2, head_sha="abc", url=None,
                              by="hubot", role="m", requested_at=None, decided_at=NOW,
                              timestamp=NOW)
    event.outputs["routing-records"] = json.dumps([decision, granted])
    on_review(event, gh)
    on_review(event, gh)  # redelivered
    store = open_store(tmp_path / "m.db")
    kinds = sorted(r["kind"] for _, r in store.records_after(0))
    assert kinds == ["approval", "decision"]  # the review is no execution of anyone
    assert store.count("execution") == 0


def test_data_branch_round_trip_keeps_the_store_between_runs(tmp_path: Path) -> None:
    gh = FakeGitHub()
    config = config_for(tmp_path)
    first_run = open_store(tmp_path / "run1.db")
    lines = [json.dumps({"id": f"r{i}",
                         "timestamp": (NOW - timedelta(hours=30 * i)).isoformat(),
                         "skill": "s", "agent": "a", "risk_level": "R0",
                         "decision": "auto_execute", "success": True, "latency_ms": 5,
                         "extra_field": i})
             for i in range(3)]
    first_run.ingest_lines(lines)
    written = sync_push(gh, first_run, config)
    assert written == {"metrics/2026-03-10.jsonl": 1, "metrics/2026-03-09.jsonl": 1,
                       "metrics/2026-03-08.jsonl": 1}
    assert sync_push(gh, first_run, config) == {}  # nothing new since the last push
    # A later run starts empty, restores, adds one record, pushes only that one.
    second_run = open_store(tmp_path / "run2.db")
    restored = sync_pull(gh, second_run, config, NOW)
    assert (restored.added, restored.duplicates) == (3, 0)
    assert sync_pull(gh, second_run, config, NOW).duplicates == 3
    second_run.set_meta("sync.pushed_seq", str(second_run.last_seq()))
    second_run.ingest_lines([lines[0].replace('"r0"', '"r9"')])
    assert sync_push(gh, second_run, config) == {"metrics/2026-03-10.jsonl": 1}
    day = gh.file_text("metrics/2026-03-10.jsonl", ref="cvf-metrics")
    assert day is not None
    assert [json.loads(x)["id"] for x in day.splitlines()] == ["r0", "r9"]
    assert json.loads(day.splitlines()[0])["extra_field"] == 0  # unknown fields survive


def test_metrics_handlers_run_after_routing_so_its_decision_is_there(tmp_path: Path) -> None:
    from bot.events import load_handlers

    router = load_handlers()
    for name, action in [("pull_request", "opened"), ("pull_request_review", "submitted"),
                         ("issue_comment", "created")]:
        event = Event(name=name, payload={"action": action}, config=config_for(tmp_path))
        modules = [h.__module__ for h in router.handlers_for(event)]
        assert modules.index("bot.handlers.routing") < modules.index("bot.handlers.metrics")
