"""Keeping the queue's database healthy over time, on a real PostgreSQL server
(tests/pgcluster.py): procrastinate schema upgrades and the retention of deliveries.

Upgrades start from real old schemas: procrastinate ships its very first schema
(``00.00.00_01_initial.sql``), so a database built from it is a procrastinate 0.x
database, and ``cvf deliveries migrate`` must bring it, file by file, to exactly the schema
a fresh install gets. Start-up behaviour with pre/post files (pre applied by whoever
starts first, once; post left for the command; a post before a pre refuses to start) is
checked with extra files added after the shipped ones, recording what ran in a table.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from bot.cli import _register_commands, cli
from bot.errors import CvfError
from bot.queue import schema
from bot.queue.schema import Migration, ensure_schema, label, migrate, shipped
from bot.queue.store import DeliveryStore
from bot.queue.worker import DeliveryQueue
from tests.pgcluster import wait_until
from tests.queue_worker import EFFECTS, ThreadWorker

pytestmark = pytest.mark.e2e
_register_commands()

REPO = "Codertocat/Hello-World"
DAY = 86400.0


@pytest.fixture
def store(pg_dsn: str) -> Iterator[DeliveryStore]:
    found = DeliveryStore(pg_dsn)
    yield found
    found.close()


def deliveries_cli(dsn: str, *args: str, config: Path | None = None) -> Any:
    head = ["--config", str(config)] if config else []
    return CliRunner().invoke(cli, [*head, "deliveries", *args], env={"CVF_QUEUE_DSN": dsn})


def levels(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT component, version FROM cvf_schema "
                            "WHERE component LIKE 'procrastinate%'").fetchall()
    return {name: label(version) for name, version in rows}


# What a schema is made of, to compare an upgraded database with a fresh one. Enum
# labels are compared by their order, not by the sort numbers ADD VALUE ... AFTER picks.
CATALOG = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
               "FROM information_schema.columns WHERE table_schema = 'public' "
               "AND table_name LIKE 'procrastinate%' ORDER BY 1, 2",
    "functions": "SELECT p.proname, pg_get_function_identity_arguments(p.oid), "
                 "regexp_replace(p.prosrc, '\\s+', ' ', 'g') FROM pg_proc p "
                 "WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1, 2",
    "enums": "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) "
             "FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid GROUP BY 1 ORDER BY 1",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
               "AND tablename LIKE 'procrastinate%' ORDER BY 1",
    "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE NOT tgisinternal ORDER BY 1",
    "constraints": "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE connamespace = 'public'::regnamespace "
                   "AND conrelid::regclass::text LIKE 'procrastinate%' ORDER BY 1",
}


def catalog(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {name: [tuple(r) for r in conn.execute(query).fetchall()]
                for name, query in CATALOG.items()}


def run_one_delivery(dsn: str, store: DeliveryStore, delivery: str) -> None:
    """A delivery goes through the queue and a worker on this database."""
    payload = {"action": "created", "repository": {"full_name": REPO},
               "issue": {"number": 5}, "comment": {"body": "sleep 0"},
               "sender": {"login": "octocat"}}
    queue = DeliveryQueue(dsn, store=store)
    assert queue.submit(delivery, "issue_comment", payload) == ("queued", delivery)
    worker = ThreadWorker(dsn)
    try:
        assert wait_until(lambda: getattr(store.get(delivery), "status", "") == "done",
                          timeout=60), store.get(delivery)
    finally:
        worker.close()


# -- procrastinate schema upgrades --------------------------------------------------------

def test_a_fresh_database_gets_procrastinates_newest_schema_with_its_level_recorded(
        pg_dsn: str, store: DeliveryStore) -> None:
    newest = shipped()[-1]
    run = ensure_schema(store)
    assert run.created and run.after == newest.key
    assert levels(pg_dsn) == {"procrastinate": label(newest.key),
                              "procrastinate_post": label(newest.key)}
    shown = deliveries_cli(pg_dsn, "migrate")
    assert shown.exit_code == 0, shown.output
    assert shown.output == (f"procrastinate {schema.installed_version()}: schema at "
                            f"{label(newest.key)}, up to date\n")


def test_a_procrastinate_0x_database_is_refused_at_start_then_migrated_to_the_fresh_schema(
        pg_dsn: str, pg_cluster: Any, store: DeliveryStore) -> None:
    files = shipped()
    initial = files[0]
    assert initial.name == "00.00.00_01_initial.sql"
    store.migrate()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(initial.sql())

    # Tables but no record of who made them, and not the ones earlier bots made.
    with pytest.raises(CvfError) as unknown:
        ensure_schema(store)
    assert "cvf deliveries migrate --from X.Y.Z" in str(unknown.value)

    planned = deliveries_cli(pg_dsn, "migrate", "--from", "0.0.0", "--dry-run")
    assert planned.exit_code == 0, planned.output
    lines = planned.output.splitlines()
    assert lines[0] == (f"procrastinate {schema.installed_version()}: schema at 00.00.00_01, "
                        f"{len(files) - 1} migration(s) to apply")
    assert lines[1:] == [f"would apply {m.name} ({m.phase})" for m in files[1:]]
    assert levels(pg_dsn) == {}  # a dry run records nothing

    # Say a bot had recorded that level (what `--from 0.0.0` does without --dry-run).
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO cvf_schema VALUES ('procrastinate', 1), "
                     "('procrastinate_post', 1)")

    # A replica or worker starting now would have to apply post-migrations (0.5's, 3.0's...)
    # before later pre-migrations: unsafe while older replicas run, so it refuses.
    with pytest.raises(CvfError) as refused:
        ensure_schema(store)
    message = str(refused.value)
    assert "post-migration 00.05.00_01_drop_started_at_column.sql comes before " \
           "pre-migration 03.00.00_01_pre_cancel_notification.sql" in message
    assert "stop every webhook replica and `cvf worker`, run `cvf deliveries migrate`" in message
    assert levels(pg_dsn)["procrastinate"] == "00.00.00_01"  # nothing applied

    done = deliveries_cli(pg_dsn, "migrate", "--from", "0.0.0")  # --from: same level
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == f"procrastinate {schema.installed_version()}: schema at 00.00.00_01"
    assert lines[1:-1] == [f"applied {m.name} ({m.phase})" for m in files[1:]]
    assert lines[-1] == (f"schema now at {label(files[-1].key)} "
                         f"({len(files) - 1} migration(s) applied)")

    fresh = pg_cluster.new_database(f"t_{uuid.uuid4().hex[:12]}")
    fresh_store = DeliveryStore(fresh)
    try:
        ensure_schema(fresh_store)
    finally:
        fresh_store.close()
    assert catalog(pg_dsn) == catalog(fresh)

    again = deliveries_cli(pg_dsn, "migrate")
    assert again.output.endswith(f"schema at {label(files[-1].key)}, up to date\n")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(EFFECTS)
    run_one_delivery(pg_dsn, store, "d-after-upgrade")


def test_a_schema_made_by_an_earlier_bot_is_recognised_and_recorded(
        pg_dsn: str, store: DeliveryStore) -> None:
    from procrastinate.schema import SchemaManager

    store.migrate()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # what releases before did
        conn.execute(SchemaManager.get_schema())
    run = ensure_schema(store)
    assert not run.created and run.applied == [] and run.waiting == []
    assert run.before == run.after == max(m.key for m in shipped() if m.version <= (3, 10, 0))
    assert levels(pg_dsn)["procrastinate"] == label(run.before)


def extra(folder: Path, name: str, body: str = "") -> Migration:
    """A migration file beyond the shipped ones that logs itself into ``upkeep_log``."""
    tag = name.removesuffix(".sql")
    path = folder / name
    path.write_text("CREATE TABLE IF NOT EXISTS upkeep_log (seq bigserial, name text);\n"
                    f"{body}\nINSERT INTO upkeep_log (name) VALUES ('{tag}');\n", "utf-8")
    return Migration(name, path)


def logged(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('upkeep_log')").fetchone()[0] is None:  # type: ignore[index]
            return []
        return [r[0] for r in conn.execute("SELECT name FROM upkeep_log ORDER BY seq")]


def test_starters_apply_pre_migrations_once_and_leave_post_ones_to_the_command(
        pg_dsn: str, store: DeliveryStore, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    ensure_schema(store)  # installed with today's procrastinate
    pre = extra(tmp_path, "03.90.00_01_pre_add_things.sql", "SELECT pg_sleep(0.3);")
    pre2 = extra(tmp_path, "03.90.00_02_pre_more_things.sql")
    post = extra(tmp_path, "03.90.00_50_post_drop_old_things.sql")
    upgraded = [*shipped(), pre, pre2, post]

    # Four replicas start together with the upgraded procrastinate.
    gate = threading.Barrier(4)
    runs: list[Any] = []
    errors: list[BaseException] = []

    def start() -> None:
        own = DeliveryStore(pg_dsn, pool_size=1)
        try:
            gate.wait()
            runs.append(ensure_schema(own, upgraded))
        except BaseException as exc:  # noqa: BLE001 (reported by the assert below)
            errors.append(exc)
        finally:
            own.close()

    with caplog.at_level(logging.INFO, logger="cvf.worker"):
        threads = [threading.Thread(target=start) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert logged(pg_dsn) == ["03.90.00_01_pre_add_things", "03.90.00_02_pre_more_things"]
    assert sorted(len(r.applied) for r in runs) == [0, 0, 0, 2]
    assert all([m.name for m in r.waiting] == [post.name] for r in runs)
    assert levels(pg_dsn)["procrastinate"] == "03.90.00_02"
    warnings = [json.loads(r.getMessage()) for r in caplog.records
                if r.levelno == logging.WARNING]
    assert warnings and warnings[0]["waiting"] == [post.name]
    assert "run `cvf deliveries migrate`" in warnings[0]["hint"]

    # A replica still on the older procrastinate restarts meanwhile: only pre-migrations
    # it does not know were applied, which keep older code working, so it starts.
    older = ensure_schema(store)
    assert (older.applied, older.waiting) == ([], [])
    assert older.before is not None and label(older.before) == "03.90.00_02"

    # The next procrastinate brings a pre-migration after that post one: starting now
    # would need the post one applied first, so a start is refused and nothing runs.
    later = [*upgraded, extra(tmp_path, "03.91.00_01_pre_next.sql")]
    with pytest.raises(CvfError, match="post-migration 03.90.00_50_post_drop_old_things.sql "
                                       "comes before pre-migration 03.91.00_01_pre_next.sql"):
        ensure_schema(store, later)
    assert len(logged(pg_dsn)) == 2

    # The command applies everything pending, in order, once.
    run = migrate(store, later)
    assert [m.name for m in run.applied] == [post.name, "03.91.00_01_pre_next.sql"]
    assert migrate(store, later).applied == []
    assert logged(pg_dsn) == ["03.90.00_01_pre_add_things", "03.90.00_02_pre_more_things",
                              "03.90.00_50_post_drop_old_things", "03.91.00_01_pre_next"]
    assert levels(pg_dsn) == {"procrastinate": "03.91.00_01",
                              "procrastinate_post": "03.90.00_50"}

    # A machine still on the older procrastinate: the newer files applied include a
    # post-migration, which older code may not run with, so it refuses to start.
    with pytest.raises(CvfError, match="newer than this machine's procrastinate"):
        ensure_schema(store)


def test_a_failing_migration_is_rolled_back_and_named(
        pg_dsn: str, store: DeliveryStore, tmp_path: Path) -> None:
    ensure_schema(store)
    good = extra(tmp_path, "03.90.00_01_pre_good.sql")
    bad = extra(tmp_path, "03.90.00_02_pre_bad.sql", "SELECT no_such_function();")
    with pytest.raises(CvfError) as failed:
        migrate(store, [*shipped(), good, bad])
    assert "procrastinate migration 03.90.00_02_pre_bad.sql failed" in str(failed.value)
    assert "the schema stays at 03.90.00_01" in str(failed.value)
    assert logged(pg_dsn) == ["03.90.00_01_pre_good"]
    assert levels(pg_dsn)["procrastinate"] == "03.90.00_01"


# -- retention -----------------------------------------------------------------------------

def add_rows(dsn: str, status: str, count: int, days_ago: float, prefix: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO cvf_deliveries (id, event, repo, payload, status, received_at, "
            "finished_at) SELECT %s || n, 'issues', %s, '{}'::jsonb, %s, "
            "now() - make_interval(secs => %s) - interval '1 minute', "
            "CASE WHEN %s IN ('done', 'dead') THEN now() - make_interval(secs => %s) END "
            "FROM generate_series(1, %s) AS n",
            (prefix, REPO, status, days_ago * DAY, status, days_ago * DAY, count))


def test_prune_deletes_old_done_deliveries_in_batches_and_keeps_dead_and_unfinished_ones(
        pg_dsn: str, store: DeliveryStore) -> None:
    store.migrate()
    add_rows(pg_dsn, "done", 2500, 20, "old-done-")
    add_rows(pg_dsn, "done", 5, 1, "new-done-")
    add_rows(pg_dsn, "dead", 3, 20, "old-dead-")
    add_rows(pg_dsn, "queued", 2, 20, "old-queued-")
    add_rows(pg_dsn, "retrying", 2, 20, "old-retrying-")
    assert store.prune(14 * DAY, batch=1000, max_batches=2) == (2000, False)
    assert store.prune(14 * DAY, batch=1000) == (500, True)
    assert store.counts() == {"queued": 2, "running": 0, "retrying": 2, "done": 5, "dead": 3}
    assert store.prune(14 * DAY, dead=True) == (3, True)
    assert store.counts()["dead"] == 0


def test_the_cli_prunes_what_the_retention_lets_go_and_says_what_it_kept(
        pg_dsn: str, store: DeliveryStore, tmp_path: Path) -> None:
    ensure_schema(store)
    add_rows(pg_dsn, "done", 30, 20, "old-done-")
    add_rows(pg_dsn, "done", 4, 2, "new-done-")
    add_rows(pg_dsn, "dead", 2, 20, "old-dead-")
    result = deliveries_cli(pg_dsn, "prune")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("pruned 30 done deliveries finished before ")
    assert lines[0].endswith(" UTC (older than 14d)")
    assert lines[1] == "pruned 0 finished queue jobs"
    assert lines[2] == ("2 dead deliveries kept: replay them with `cvf deliveries retry "
                        "--all-dead`, or prune them with --dead")
    result = deliveries_cli(pg_dsn, "prune", "--older-than", "1d", "--dead")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(
        "pruned 6 done and dead deliveries finished before ")
    assert store.counts()["done"] == 0 and store.counts()["dead"] == 0

    bad = deliveries_cli(pg_dsn, "prune", "--older-than", "two weeks")
    assert bad.exit_code == 1
    assert '--older-than: expected a duration like "14d", got "two weeks"' in bad.output

    config = tmp_path / "cvf.yml"
    config.write_text("server:\n  queue_retention: 1d\n", "utf-8")
    short = deliveries_cli(pg_dsn, "prune", config=config)
    assert short.exit_code == 1
    assert 'server.queue_retention: "1d" is shorter than the 3 days GitHub lets an admin ' \
           "redeliver a delivery" in short.output
    assert 'set it to at least "3d"' in short.output
    config.write_text("server:\n  queue_retention: two weeks\n", "utf-8")
    wrong = deliveries_cli(pg_dsn, "prune", config=config)
    assert wrong.exit_code == 1
    assert 'server.queue_retention: expected a duration like "14d", got "two weeks"' \
           in wrong.output


def test_the_duplicate_guard_reaches_back_as_far_as_the_retention(
        pg_dsn: str, store: DeliveryStore) -> None:
    queue = DeliveryQueue(pg_dsn, store=store)
    payload = {"action": "opened", "repository": {"full_name": REPO}, "issue": {"number": 1}}
    assert queue.submit("d-1", "issues", payload) == ("queued", "d-1")
    store.finish("d-1", "done")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE cvf_deliveries SET finished_at = now() - interval '13 days'")
    assert queue.submit("d-1", "issues", payload) == ("duplicate", "d-1")  # redelivered
    assert store.prune(14 * DAY) == (0, True)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE cvf_deliveries SET finished_at = now() - interval '15 days'")
        conn.execute("DELETE FROM procrastinate_jobs")  # its job ran and went
    assert store.prune(14 * DAY) == (1, True)
    # Past the retention, the same id is a new delivery (the handlers change nothing twice).
    assert queue.submit("d-1", "issues", payload) == ("queued", "d-1")


def test_the_worker_prunes_on_its_maintenance_round_keeping_dead_deliveries(
        pg_dsn: str, store: DeliveryStore) -> None:
    """A dead delivery's failed job and its events are pruned with the retention; the
    delivery row stays dead (and replayable); old done rows go; recent ones stay."""
    ensure_schema(store)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(EFFECTS)
    queue = DeliveryQueue(pg_dsn, store=store)
    failing = {"action": "created", "repository": {"full_name": REPO}, "issue": {"number": 2},
               "comment": {"body": "fail"}, "sender": {"login": "octocat"}}
    queue.submit("d-dead", "issue_comment", failing)

    def jobs() -> list[tuple[Any, ...]]:
        with psycopg.connect(pg_dsn) as conn:
            return conn.execute("SELECT status FROM procrastinate_jobs").fetchall()

    worker = ThreadWorker(pg_dsn, attempts=1)
    try:
        assert wait_until(lambda: store.counts()["dead"] == 1, timeout=60)
        assert wait_until(lambda: jobs() == [("failed",)], timeout=30), jobs()
    finally:
        worker.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE procrastinate_events SET at = at - interval '20 days'")
        conn.execute("UPDATE cvf_deliveries SET finished_at = now() - interval '20 days'")
    add_rows(pg_dsn, "done", 1500, 20, "old-done-")
    add_rows(pg_dsn, "done", 3, 1, "new-done-")

    worker = ThreadWorker(pg_dsn, retention=14 * DAY, prune_every=3600.0, prune_batch=500,
                          prune_batches=1)
    try:
        # 500 rows per maintenance round: the backlog goes over several rounds.
        assert wait_until(lambda: store.counts()["done"] == 3, timeout=60), store.counts()
        with psycopg.connect(pg_dsn) as conn:
            assert wait_until(lambda: conn.execute(
                "SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,), timeout=30)
            assert conn.execute("SELECT count(*) FROM procrastinate_events").fetchone() == (0,)
    finally:
        worker.close()
    dead = store.get("d-dead")
    assert dead is not None and (dead.status, dead.attempts) == ("dead", 1)  # no retry
    assert "failed on purpose" in (dead.last_error or "")
    with psycopg.connect(pg_dsn) as conn:  # the round is shared: the next one in an hour
        row = conn.execute("SELECT last_run > now() - interval '5 minutes' FROM cvf_ticks "
                           "WHERE name = 'prune'").fetchone()
    assert row == (True,)
    assert store.due("prune", 3600.0) is False


def test_cvf_worker_takes_the_retention_from_the_config(
        pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Any] = []
    monkeypatch.setattr("bot.queue.worker.run_worker",
                        lambda dsn, runner, settings, tick=None: started.append(settings))
    monkeypatch.setattr("bot.app._setup_logging", lambda: None)
    config = tmp_path / "cvf.yml"
    config.write_text("server:\n  queue_retention: 1w\n", "utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "worker", "--no-tick"],
                                env={"CVF_QUEUE_DSN": pg_dsn})
    assert result.exit_code == 0, result.output
    assert started[0].retention == 7 * DAY and started[0].prune_every == 3600.0
    config.write_text("server:\n  queue_retention: 36h\n", "utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "worker", "--no-tick"],
                                env={"CVF_QUEUE_DSN": pg_dsn})
    assert result.exit_code == 1 and len(started) == 1
    assert 'server.queue_retention: "36h" is shorter than the 3 days' in result.output
