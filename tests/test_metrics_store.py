"""The metrics store: records in, rollups out; bad input and crashes change nothing."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from bot.errors import InputError
from bot.metrics.record import ExecutionMetric, RecordError
from bot.metrics.rollup import HIST_RATIO, ZERO_BIN, bin_value, bins_of, percentiles
from bot.metrics.store import MIGRATIONS, open_store, pieces


def record(i: int, **over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": f"r{i}", "timestamp": f"2026-03-10T11:{i % 60:02d}:00Z", "skill": "deploy",
        "agent": "a1", "risk_level": "R1", "decision": "auto_execute", "success": True,
        "error_type": None, "latency_ms": 100 + i, "approval": None,
        "audit": {"report_posted": True, "approval_recorded": False}, "source": "test"}
    base.update(over)
    return base


def lines(*records: dict[str, object]) -> list[str]:
    return [json.dumps(r) for r in records]


def executions(store: object) -> int:
    """Executions counted by the rollups (not the raw rows) over all time."""
    return sum(row[2] for row in store.rollup(pieces(0, 2_000_000_000)).main())  # type: ignore[attr-defined]


def test_store_is_created_on_first_use_with_wal_and_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / ".cvf" / "metrics.db"
    store = open_store(path)
    assert path.exists()
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version() == MIGRATIONS[-1][0]
    store.close()
    assert open_store(path).schema_version() == MIGRATIONS[-1][0]  # reopening migrates nothing


def test_a_store_from_a_newer_cvf_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path / "m.db")
    store.db.execute("INSERT INTO schema_migrations VALUES (99, 'x')")
    store.close()
    with pytest.raises(InputError, match="schema version 99"):
        open_store(tmp_path / "m.db")


def test_unknown_fields_are_kept_and_exported_back(tmp_path: Path) -> None:
    store = open_store(":memory:")
    store.ingest_lines(lines(record(1, model="gpt-x", cost={"usd": 0.02})))
    out = io.StringIO()
    assert store.export_jsonl(out) == 1
    exported = json.loads(out.getvalue())
    assert exported["model"] == "gpt-x" and exported["cost"] == {"usd": 0.02}
    metric = ExecutionMetric.from_json(exported)
    assert metric.extra == {"model": "gpt-x", "cost": {"usd": 0.02}}
    assert metric.to_json()["model"] == "gpt-x"


def test_missing_id_is_generated_stably_so_reimport_adds_nothing() -> None:
    store = open_store(":memory:")
    data = [json.dumps({k: v for k, v in record(1).items() if k not in ("id", "source")})]
    first = store.ingest_lines(data)
    again = store.ingest_lines(data)
    assert (first.added, again.added, again.duplicates) == (1, 0, 1)
    out = io.StringIO()
    store.export_jsonl(out)
    exported = json.loads(out.getvalue())
    assert exported["id"].startswith("c-") and exported["source"] == "jsonl"


def test_duplicate_ids_count_once_in_rollups() -> None:
    store = open_store(":memory:")
    result = store.ingest_lines(lines(record(1), record(2), record(1)))
    assert (result.added, result.duplicates) == (2, 1)
    store.ingest_lines(lines(record(2), record(3)))
    assert executions(store) == 3
    assert store.count() == 3


def test_bad_lines_are_named_with_line_and_reason_and_nothing_is_stored() -> None:
    store = open_store(":memory:")
    data = lines(record(1)) + ["", "{not json", json.dumps(record(3, risk_level="R9")),
                                json.dumps(record(4, timestamp="2026-03-10 11:00"))]
    with pytest.raises(RecordError) as info:
        store.ingest_lines(data, where="runs.jsonl")
    problems = info.value.problems
    assert problems[0].startswith("runs.jsonl:3: not valid JSON")
    assert problems[1] == "runs.jsonl:4: `risk_level` must be one of R0, R1, R2, R3, got \"R9\""
    assert problems[2].startswith("runs.jsonl:5: `timestamp` must be ISO 8601 with a zone")
    assert "nothing was stored" in problems[-1]
    assert store.count() == 0
    assert store.rollup(pieces(0, 2_000_000_000)).main() == []


@pytest.mark.parametrize(("change", "message"), [
    ({"success": "yes"}, "`success` must be true or false"),
    ({"latency_ms": -1}, "`latency_ms` must be a number of milliseconds >= 0"),
    ({"decision": "yolo"}, "`decision` must be one of auto_execute"),
    ({"agent": ""}, "`agent` must be a non-empty string"),
    ({"approval": {"granted": True, "rejected": True}}, "cannot be both granted and rejected"),
    ({"approval": {"requested_at": "yesterday"}}, "`approval.requested_at` must be ISO 8601"),
    ({"audit": {"report_posted": 1}}, "`audit.report_posted` must be true or false"),
])
def test_each_field_is_checked(change: dict[str, object], message: str) -> None:
    with pytest.raises(RecordError, match=message.replace("(", r"\(")):
        open_store(":memory:").ingest_lines(lines(record(1, **change)))


def test_an_exception_in_the_middle_of_an_import_leaves_the_store_as_before() -> None:
    store = open_store(":memory:")
    store.ingest_lines(lines(record(0, id="before")))

    def exploding() -> object:
        for i in range(50_000):
            yield json.dumps(record(i, id=f"x{i}"))
        raise OSError("disk went away")

    with pytest.raises(OSError):
        store.ingest_lines(exploding())  # type: ignore[arg-type]
    assert store.count() == 1
    assert executions(store) == 1


def test_a_killed_import_leaves_the_store_as_before(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = open_store(path)
    store.ingest_lines(lines(record(0, id="before")))
    store.close()
    script = textwrap.dedent(f"""
        import json, sys, time
        from bot.metrics.store import open_store
        def gen():
            for i in range(60_000):
                yield json.dumps({{"id": f"k{{i}}", "timestamp": "2026-03-10T11:00:00Z",
                    "skill": "s", "agent": "a", "risk_level": "R0",
                    "decision": "auto_execute", "success": True, "latency_ms": 5}})
            print("midway", flush=True)
            time.sleep(60)
        open_store({str(path)!r}).ingest_lines(gen())
    """)
    scratch = tmp_path / "tmp"  # where the import's parser processes pass chunks
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(scratch)})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "midway"  # 60k rows read, none committed
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reopened = open_store(path)
    assert reopened.count() == 1
    assert executions(reopened) == 1
    for _ in range(100):  # the orphaned parser notices within a second and cleans up
        if not any(scratch.iterdir()):
            break
        time.sleep(0.1)
    assert list(scratch.iterdir()) == []


def test_add_many_takes_dataclasses_or_dicts_all_or_nothing() -> None:
    store = open_store(":memory:")
    metric = ExecutionMetric.from_json(record(1))
    assert store.add_many([metric, record(2)]).added == 2
    with pytest.raises(RecordError, match="record 2: `skill`"):
        store.add_many([record(3), record(4, skill=None)])
    assert store.count() == 2


def test_histogram_percentiles_are_within_half_a_percent() -> None:
    values = [0.5 + i * 3.7 for i in range(2000)]
    bins, counts = np.unique(bins_of(np.array(values)), return_counts=True)
    ordered = sorted(values)
    estimates = percentiles(bins, counts.astype(float), (50, 95, 99))
    for p, estimate in zip((50, 95, 99), estimates, strict=True):
        exact = ordered[max(1, -(-p * len(values) // 100)) - 1]
        assert estimate is not None
        assert abs(estimate - exact) / exact <= (HIST_RATIO ** 0.5 - 1) + 1e-9
    assert percentiles(np.array([], dtype=np.int64), np.array([]), (50,)) == [None]
    assert bins_of(np.array([0.0]))[0] == ZERO_BIN and bin_value(ZERO_BIN) == 0.0


def test_pieces_cover_the_window_exactly_with_coarse_buckets_inside() -> None:
    since, until = 1_000_020, 1_000_020 + 3 * 86400 + 7260
    cover = pieces(since, until)
    assert cover[0][1] == since // 60 * 60 and cover[-1][2] == -(-until // 60) * 60
    for (_, _, end), (_, start, _) in zip(cover, cover[1:], strict=False):
        assert end == start
    assert {res for res, _, _ in cover} == {60, 3600, 86400}
    assert all(res <= 3600 for res, _, _ in pieces(since, until, 3600))


def test_nan_latency_is_refused_whichever_json_parser_runs() -> None:
    line = json.dumps(record(1)).replace('"latency_ms": 101', '"latency_ms": NaN')
    with pytest.raises(RecordError, match=r"input:1: `latency_ms` must be a number"):
        open_store(":memory:").ingest_lines([line])


def test_a_version_1_store_is_migrated_and_its_rollups_rebuilt_from_the_records(
        tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    data = [record(i, agent=f"a{i % 3}", skill=f"s{i % 2}", success=i % 4 != 0)
            for i in range(40)]
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
                "applied_at TEXT NOT NULL)")
    version, script = MIGRATIONS[0]
    assert version == 1
    old.executescript(script)
    old.execute("INSERT INTO schema_migrations VALUES (1, '2026-03-01T00:00:00+00:00')")
    old.executemany("INSERT INTO executions (id, ts, body) VALUES (?, ?, ?)",
                    [(r["id"], datetime.fromisoformat(str(r["timestamp"])).timestamp(),
                      json.dumps(r)) for r in data])
    old.close()

    migrated = open_store(path)
    assert migrated.schema_version() == MIGRATIONS[-1][0]
    tables = {name for (name,) in migrated.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "rollups" in tables and not any(name.startswith("roll_") for name in tables)
    fresh = open_store(":memory:")
    fresh.ingest_lines(lines(*data))
    cover = pieces(0, 2_000_000_000)
    assert migrated.rollup(cover).main() == fresh.rollup(cover).main()
    assert migrated.rollup(cover).agents() == fresh.rollup(cover).agents()
    assert migrated.rollup(cover).skills() == fresh.rollup(cover).skills()
    assert executions(migrated) == 40


def test_names_stay_right_after_a_rolled_back_import_and_across_connections(
        tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    first, second = open_store(path), open_store(path)

    def exploding() -> object:
        for i in range(30_000):  # one chunk goes to the writer before the failure
            yield json.dumps(record(i, id=f"x{i}", agent="ghost"))
        raise OSError("disk went away")

    with pytest.raises(OSError):
        first.ingest_lines(exploding())  # type: ignore[arg-type]
    first.ingest_lines(lines(record(1, agent="alice")))
    second.ingest_lines(lines(record(2, agent="bob")))
    first.ingest_lines(lines(record(3, agent="bob")))
    cover = pieces(0, 2_000_000_000)
    assert {a: n for a, (n, *_rest) in first.rollup(cover).agents().items()} == {
        "alice": 1, "bob": 2}
    assert second.rollup(cover).agents().keys() == {"alice", "bob"}
