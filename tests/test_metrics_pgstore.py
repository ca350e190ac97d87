"""The metrics store on a real PostgreSQL server: same numbers as SQLite, safe with
several writers, migrated from SQLite by the CLI, schema versioned."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import _register_commands, cli
from bot.metrics.aggregate import PERIODS, dashboard, time_series, window
from bot.metrics.facts import approval_record, decision_record
from bot.metrics.pgstore import PostgresStore
from bot.metrics.store import open_store, pieces

_register_commands()
NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
EVERYTHING = pieces(0, 2_000_000_000)


def dataset(size: int, seed: int = 7) -> list[str]:
    """Executions over 30 days (every risk, failures, approvals, a few agents and skills),
    with decisions and approvals mixed in, as JSONL lines."""
    rng = random.Random(seed)
    out: list[str] = []
    start = NOW - timedelta(days=30)
    for i in range(size):
        moment = start + timedelta(seconds=(i + rng.random()) * 30 * 86400 / size)
        risk = rng.choice(["R0", "R1", "R1", "R2", "R3"])
        ok = rng.random() > 0.05
        approval = None
        if risk in ("R2", "R3"):
            granted = rng.random() > 0.2
            approval = {"required": True, "granted": granted, "rejected": not granted,
                        "approver": "lead",
                        "requested_at": (moment - timedelta(seconds=rng.randint(10, 5000))
                                         ).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "decided_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
        out.append(json.dumps({
            "id": f"e{i}", "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "skill": f"skill-{rng.randint(0, 6)}", "agent": f"agent-{rng.randint(0, 4)}",
            "risk_level": risk, "decision": {"R0": "auto_execute", "R1": "scope_guard",
                                             "R2": "approval_required",
                                             "R3": "human_intervention"}[risk],
            "success": ok, "error_type": None if ok else "timeout",
            "latency_ms": round(rng.lognormvariate(5, 1), 3), "approval": approval,
            "audit": {"report_posted": True, "approval_recorded": rng.random() > 0.1},
            "source": "test"}))
        if i % 97 == 0:
            head = f"{i:040x}"
            out.append(json.dumps(decision_record(
                repo="o/r", number=i, head_sha=head, url=None, skill="deploy",
                risk_level="R2", decision="approval_required", agent="agent-1",
                fallbacks=[], approval_role="maintainers", approvers=["carol"],
                gate="pending", timestamp=moment)))
            out.append(json.dumps(approval_record(
                state="granted", repo="o/r", number=i, head_sha=head, url=None, by="carol",
                role="maintainers", requested_at=moment, decided_at=moment,
                timestamp=moment)))
    return out


def everything(store: Any) -> dict[str, Any]:
    """Every number a reader can get from a store."""
    views: dict[str, Any] = {}
    for name in PERIODS:
        win = window(name, now=NOW)
        views[name] = {"dashboard": dashboard(store, win), "series": time_series(store, win)}
    views["custom"] = dashboard(store, window(since=NOW - timedelta(days=3, minutes=17),
                                              until=NOW - timedelta(hours=5, minutes=3),
                                              now=NOW))
    views["counts"] = {k: store.count(k) for k in (None, "execution", "decision",
                                                    "approval")}
    views["facts"] = [store.facts("decision"), store.facts("approval")]
    views["main"] = store.rollup(EVERYTHING).main()
    views["agents"] = store.rollup(EVERYTHING).agents()
    views["records"] = [body for _, body in store.records_after(0, limit=10**9)]
    views["last_seen"] = store.agents_last_seen(0)
    return views


def test_reports_from_postgresql_equal_those_from_sqlite_on_the_same_data(
        pg_dsn: str, tmp_path: Path) -> None:
    data = dataset(6000)
    sqlite = open_store(tmp_path / "m.db")
    pg = open_store(pg_dsn)
    assert isinstance(pg, PostgresStore)
    try:
        for store in (sqlite, pg):
            first = store.ingest_lines(data[:4000])
            again = store.ingest_lines(data[3000:])  # overlaps: 1000+ lines stored twice
            assert (first.added + again.added, again.duplicates) == (len(data), 1000 + 0)
        assert everything(pg) == everything(sqlite)
    finally:
        sqlite.close()
        pg.close()


def test_concurrent_writers_never_lose_or_double_count_a_record(
        pg_dsn: str, tmp_path: Path) -> None:
    data = dataset(4000, seed=11)
    batches = [data[i:i + 300] for i in range(0, len(data), 300)]
    errors: list[BaseException] = []

    def writer(order: list[list[str]]) -> None:
        store = open_store(pg_dsn)
        try:
            for batch in order:
                store.ingest_lines(batch)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            store.close()

    # Four replicas write every batch, each in its own order: each record arrives 4 times.
    orders = [batches, batches[::-1], batches[1::2] + batches[::2], batches[::2] + batches[1::2]]
    threads = [threading.Thread(target=writer, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    reference = open_store(tmp_path / "ref.db")
    reference.ingest_lines(data)
    pg = open_store(pg_dsn)
    try:
        ours, theirs = everything(pg), everything(reference)
        ours.pop("records"), theirs.pop("records")  # same set, but in arrival order
        assert ours == theirs
        assert pg.count() == len(data)
    finally:
        pg.close()
        reference.close()


def test_cvf_metrics_migrate_moves_a_sqlite_store_and_the_reports_stay_the_same(
        pg_dsn: str, tmp_path: Path) -> None:
    db = tmp_path / "metrics.db"
    source = open_store(db)
    source.ingest_lines(dataset(2500, seed=3))
    source.remember_alert_issue("burn:deploy", 42)
    source.set_meta("sync.pushed_seq", "17")
    source.close()
    runner = CliRunner()
    moved = runner.invoke(cli, ["metrics", "migrate", "--from", str(db), "--to", pg_dsn])
    assert moved.exit_code == 0, moved.output
    assert "migrated 2552 record(s) (0 already in the target)" in moved.output
    again = runner.invoke(cli, ["metrics", "migrate", "--from", str(db), "--to", pg_dsn])
    assert "migrated 0 record(s) (2552 already in the target)" in again.output
    reports = [runner.invoke(cli, ["metrics", "report", "--period", "30d", "--format", "json",
                                   "--no-alerts", "--store", target,
                                   "--now", "2026-03-01T12:00:30Z"]).output
               for target in (str(db), pg_dsn)]
    assert reports[0] == reports[1] and json.loads(reports[0])
    pg = open_store(pg_dsn)
    try:
        assert pg.alert_issues() == {"burn:deploy": 42}
        assert pg.get_meta("sync.pushed_seq") == "17"
    finally:
        pg.close()
    missing = runner.invoke(cli, ["metrics", "migrate", "--from", str(tmp_path / "nope.db"),
                                  "--to", pg_dsn])
    assert missing.exit_code == 1 and "no such metrics store file" in missing.output


def test_the_schema_is_versioned_and_a_newer_one_is_refused(pg_dsn: str) -> None:
    import psycopg

    import bot.metrics.pgstore as pgstore

    store = open_store(pg_dsn)
    assert isinstance(store, PostgresStore)
    assert store.schema_version() == len(pgstore.MIGRATIONS) == 2
    store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE cvf_schema SET version = 99 WHERE component = 'metrics'")
    pgstore._migrated.discard(pg_dsn)
    with pytest.raises(Exception, match="version 99, newer than this bot knows"):
        open_store(pg_dsn)


def test_cvf_metrics_dsn_selects_the_postgresql_store(
        pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import parse_config
    from bot.handlers.metrics import store_for

    monkeypatch.setenv("CVF_METRICS_DSN", pg_dsn)
    store = store_for(parse_config(""))
    try:
        assert isinstance(store, PostgresStore)
    finally:
        store.close()


def test_a_big_import_through_the_parser_processes_equals_sqlite_with_odd_characters(
        pg_dsn: str, tmp_path: Path) -> None:
    """45,000 lines are three chunks: the parser processes format the COPY rows. Ids and
    bodies holding COPY's special characters (tab, backslash, escaped newline) round-trip,
    and a re-import of an overlapping file (some ids stored) adds only the new ones."""
    data = dataset(45000, seed=3)
    odd = json.loads(data[10])
    odd.update(id="odd\tid\\x\u00e9", skill="sk\\ill", agent="agent\ttab",
               error_type="line\nbreak \"quoted\"")
    data[10] = json.dumps(odd)
    data[11] = data[11].replace('"source"', ' \t "source"')  # a raw tab between tokens
    sqlite = open_store(tmp_path / "m.db")
    pg = open_store(pg_dsn)
    try:
        results = [(store.ingest_lines(data[:30000]), store.ingest_lines(data[25000:]))
                   for store in (sqlite, pg)]
        assert results[0] == results[1]
        first, again = results[1]
        assert first.added + again.added == len(data) and again.duplicates == 5000
        assert everything(pg) == everything(sqlite)
        assert [body for _, body in pg.records_after(0, limit=500) if body["id"] == odd["id"]
                ] == [odd]
    finally:
        sqlite.close()
        pg.close()


def test_a_version_1_store_is_upgraded_in_place_keeping_every_record(pg_dsn: str) -> None:
    import psycopg

    import bot.metrics.pgstore as pgstore

    data = dataset(500, seed=5)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        from bot.pg import apply_migrations
        apply_migrations(conn, pgstore.COMPONENT, pgstore.MIGRATIONS[:1])
    pgstore._migrated.discard(pg_dsn)
    old = pgstore.PostgresStore.__new__(pgstore.PostgresStore)
    pgstore.DimNames.__init__(old)
    old.dsn, old.where = pg_dsn, pg_dsn
    old.db = psycopg.connect(pg_dsn, autocommit=True)
    old.ingest_lines(data[:300])
    assert old.schema_version() == 1
    old.close()
    store = open_store(pg_dsn)
    try:
        assert isinstance(store, PostgresStore) and store.schema_version() == 2
        assert store.ingest_lines(data).added == len(data) - 300
        collation = store.db.execute(
            "SELECT collation_name FROM information_schema.columns "
            "WHERE table_name = 'metrics_records' AND column_name = 'id'").fetchone()
        assert collation == ("C",)
        assert store.count() == len(data)
    finally:
        store.close()
