"""Three record kinds: executions, routing decisions and approvals, and old stores migrated."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.metrics.facts import approval_record, decision_record
from bot.metrics.record import RecordError
from bot.metrics.rollup import LATENCY
from bot.metrics.store import MIGRATIONS, open_store, pieces

FIXTURE = Path(__file__).parent / "fixtures" / "metrics" / "store-v2.db"
AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EVERYTHING = pieces(0, 2_000_000_000)


def decision(number: int = 1, head: str = "a" * 40, **over: object) -> dict[str, object]:
    base = decision_record(repo="o/r", number=number, head_sha=head,
                           url=f"https://github.com/o/r/pull/{number}", skill="deploy",
                           risk_level="R2", decision="approval_required", agent="executor-1",
                           fallbacks=["executor-2"], approval_role="maintainers",
                           approvers=["carol", "o/maintainers"], gate="pending", timestamp=AT)
    base.update(over)
    return base


def test_decisions_and_approvals_are_stored_once_and_never_counted_as_executions() -> None:
    store = open_store(":memory:")
    granted = approval_record(state="granted", repo="o/r", number=1, head_sha="a" * 40,
                              url=None, by="carol", role="maintainers",
                              requested_at=AT, decided_at=AT.replace(hour=13), timestamp=AT)
    first = store.add_many([decision(), decision(gate="passed"), granted])
    again = store.ingest_lines([json.dumps(decision()), json.dumps(granted)])
    # The decision's id comes from repository, pull request, head and decision: a second
    # evaluation (here with another gate state) or a redelivery stores nothing new.
    assert (first.added, first.duplicates) == (2, 1)
    assert (again.added, again.duplicates) == (0, 2)
    assert store.count("decision") == 1 and store.count("approval") == 1
    assert store.count("execution") == 0
    assert store.rollup(EVERYTHING).main() == [] and store.rollup(EVERYTHING).agents() == {}
    assert [d["pull_request"] for d in store.facts("decision")] == [1]
    assert [a["state"] for a in store.facts_about("a" * 40) if a["kind"] == "approval"] == [
        "granted"]
    out = io.StringIO()
    assert store.export_jsonl(out) == 2  # the data branch keeps every kind


def test_a_bad_decision_is_refused_with_the_field_and_nothing_is_stored() -> None:
    store = open_store(":memory:")
    with pytest.raises(RecordError) as caught:
        store.ingest_lines([json.dumps(decision()), json.dumps(decision(decision="maybe")),
                            json.dumps({"kind": "verdict", "timestamp": "2026-03-10T12:00:00Z"})],
                           where="facts.jsonl")
    assert caught.value.problems[:2] == [
        "facts.jsonl:2: `decision` must be one of auto_execute, scope_guard, approval_required, "
        "human_intervention, got \"maybe\"",
        "facts.jsonl:3: `kind` must be one of execution, decision, approval (or left out for "
        "an execution), got \"verdict\""]
    assert store.count() == 0


def test_executions_keep_their_contract_and_may_say_their_kind() -> None:
    store = open_store(":memory:")
    execution = {"timestamp": "2026-03-10T12:00:00Z", "skill": "deploy", "agent": "executor-1",
                 "risk_level": "R1", "decision": "auto_execute", "success": True,
                 "latency_ms": 5}
    store.ingest_lines([json.dumps(execution), json.dumps({**execution, "kind": "execution",
                                                           "latency_ms": 6})])
    assert store.count("execution") == 2
    assert store.rollup(EVERYTHING).agents()["executor-1"][0] == 2


def test_percentiles_are_exact_when_every_value_is_the_same() -> None:
    store = open_store(":memory:")
    rows = [{"timestamp": f"2026-03-10T12:{i % 60:02d}:00Z", "skill": "deploy",
             "agent": "executor-1", "risk_level": "R1", "decision": "auto_execute",
             "success": False, "error_type": "timeout", "latency_ms": 30_000, "n": i}
            for i in range(500)]
    store.ingest_lines([json.dumps(r) for r in rows])
    assert store.rollup(EVERYTHING).percentiles(LATENCY, (50, 95, 99, 100)) == [
        30_000.0, 30_000.0, 30_000.0, 30_000.0]
    # and the smallest and largest values read back exactly in a mixed bin
    store.ingest_lines([json.dumps({**rows[0], "latency_ms": 30_100, "n": -1})])
    assert store.rollup(EVERYTHING).percentiles(LATENCY, (0.1, 100)) == [30_000.0, 30_100.0]


def test_a_store_written_by_the_previous_version_migrates_keeping_every_record(
        tmp_path: Path) -> None:
    """tests/fixtures/metrics/store-v2.db was written by schema version 2's store code
    (tests/fixtures/metrics/make_store_v2.py): agents' executions plus the routing gate's
    and the reviews' records, which that version stored as executions."""
    path = tmp_path / "metrics.db"
    shutil.copy(FIXTURE, path)
    raw = sqlite3.connect(path)
    before = {rid: json.loads(body) for rid, body in raw.execute(
        "SELECT id, body FROM executions")}
    raw.close()
    assert len(before) == 72

    store = open_store(path)
    assert store.schema_version() == MIGRATIONS[-1][0]
    kept = {r["id"]: r for r in (json.loads(line) for line in _export(store))}
    assert set(before) <= set(kept)  # every stored record is still there
    for rid, old in before.items():
        now = kept[rid]
        if rid.startswith("routing-"):
            assert now["kind"] == "decision" and now["migrated_from"] == old
            assert now["agent"] != "unassigned"
        elif rid.startswith("gh-review-"):
            assert now["kind"] == "approval" and now["state"] == "rejected"
            assert now["by"] == "bob" and now["migrated_from"] == old
        else:
            assert now == old  # executions are untouched
    # Executions are now only the agents' and the workflow run's.
    agents = store.rollup(EVERYTHING).agents()
    assert set(agents) == {"executor-1", "executor-2", "executor-3"}
    assert sum(n for n, *_ in agents.values()) == 61
    assert sum(err for _n, err, *_ in agents.values()) == 6
    # A routing record whose approval was granted gives the approval it witnessed, and
    # every decision that needed one, its request.
    approvals = store.facts("approval")
    states = sorted(a["state"] for a in approvals)
    assert states.count("granted") == 2 and states.count("rejected") == 1
    assert states.count("requested") == 4
    store.close()
    reopened = open_store(path)  # migrating again changes nothing
    assert reopened.count() == store_count(path)


def store_count(path: Path) -> int:
    return int(sqlite3.connect(path).execute("SELECT COUNT(*) FROM records").fetchone()[0])


def _export(store: object) -> list[str]:
    out = io.StringIO()
    store.export_jsonl(out)  # type: ignore[attr-defined]
    return out.getvalue().splitlines()
