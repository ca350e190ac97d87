"""The durable delivery queue on a real PostgreSQL server (tests/pgcluster.py).

Replicas are the real webhook app under a real WSGI server; workers run ``run_worker``
(procrastinate) in threads or in a process that is killed with SIGKILL. The handler
records each run in the database (tests/queue_worker.py), so the checks read what
happened from outside every process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from bot.app import create_app
from bot.cli import _register_commands, cli
from bot.config import parse_config
from bot.queue.store import DeliveryStore
from bot.queue.worker import guarded_tick
from tests.conftest import LocalServer, load_payload, post_webhook
from tests.pgcluster import wait_until
from tests.queue_worker import EFFECTS, ThreadWorker, recording_router

pytestmark = pytest.mark.e2e
_register_commands()

SECRET = "queue-webhook-secret"
REPO = "Codertocat/Hello-World"
ROOT = Path(__file__).resolve().parent.parent


def no_github(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a replica in queue mode must not call GitHub")


@pytest.fixture
def replicas(pg_dsn: str) -> Iterator[list[LocalServer]]:
    servers = [LocalServer(create_app(parse_config(""), github_factory=no_github,
                                      router=recording_router(pg_dsn),
                                      env={"CVF_WEBHOOK_SECRET": SECRET,
                                           "CVF_QUEUE_DSN": pg_dsn}))
               for _ in range(2)]
    yield servers
    for server in servers:
        server.close()
        server_state = server.server.app.extensions["cvf"]  # type: ignore[attr-defined]
        if server_state.queue is not None:
            server_state.queue.close()


@pytest.fixture
def store(pg_dsn: str) -> Iterator[DeliveryStore]:
    found = DeliveryStore(pg_dsn)
    yield found
    found.close()


def comment(number: int, body: str) -> dict[str, Any]:
    payload = load_payload("issue_comment", "created")
    payload["issue"]["number"] = number
    payload["comment"]["body"] = body
    payload["repository"]["full_name"] = REPO
    return payload


def send(server: LocalServer, number: int, body: str, delivery: str) -> tuple[int, dict]:
    status, answer = post_webhook(server.url, "issue_comment", comment(number, body),
                                  secret=SECRET, delivery=delivery)
    return status, json.loads(answer)


def effects(dsn: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(EFFECTS)
        return [tuple(r) for r in conn.execute(
            "SELECT delivery, subject, step FROM test_effects ORDER BY seq").fetchall()]


def test_a_replica_stores_the_delivery_and_answers_202_and_a_second_replica_does_not_queue_it_again(
        replicas: list[LocalServer], store: DeliveryStore, pg_dsn: str) -> None:
    first, second = replicas
    status, answer = send(first, 7, "hello", "d-same")
    assert (status, answer["status"]) == (202, "queued")
    status, answer = send(second, 7, "hello", "d-same")  # GitHub sent it to two replicas
    assert (status, answer["status"]) == (200, "duplicate")
    assert store.counts()["queued"] == 1
    stored = store.get("d-same")
    assert stored is not None and (stored.repo, stored.number) == (REPO, 7)
    with psycopg.connect(pg_dsn) as conn:
        jobs = conn.execute("SELECT lock, status FROM procrastinate_jobs").fetchall()
    assert jobs == [(f"{REPO}#7", "todo")]
    # A bad signature is refused before anything is stored.
    status, _ = post_webhook(first.url, "issue_comment", comment(7, "x"), secret="wrong",
                             delivery="d-forged")
    assert status == 401 and store.get("d-forged") is None


def test_workers_run_each_delivery_once_one_at_a_time_and_in_order_per_issue(
        replicas: list[LocalServer], store: DeliveryStore, pg_dsn: str) -> None:
    sent: dict[str, list[str]] = defaultdict(list)
    workers = [ThreadWorker(pg_dsn), ThreadWorker(pg_dsn)]
    try:
        for i in range(36):
            number = 1 + i % 3
            delivery = f"d-{i:02d}"
            status, _ = send(replicas[i % 2], number, "sleep 0.03", delivery)
            assert status == 202
            sent[f"{REPO}#{number}"].append(delivery)
            if i % 6 == 0:  # redelivered to the other replica
                status, answer = send(replicas[(i + 1) % 2], number, "sleep 0.03", delivery)
                assert answer["status"] == "duplicate"
        assert wait_until(lambda: store.counts()["done"] == 36, timeout=60), store.counts()
    finally:
        for worker in workers:
            worker.close()
    runs = effects(pg_dsn)
    ends = [d for d, _, step in runs if step == "end"]
    assert sorted(ends) == sorted(d for ds in sent.values() for d in ds)  # each once
    for subject, deliveries in sent.items():
        steps = [(d, step) for d, s, step in runs if s == subject]
        # start/end strictly alternate (never two at once) and follow the arrival order
        assert steps == [(d, step) for d in deliveries for step in ("start", "end")]


def test_a_failing_delivery_is_dead_lettered_then_listed_and_replayed_by_the_cli(
        replicas: list[LocalServer], store: DeliveryStore, pg_dsn: str) -> None:
    worker = ThreadWorker(pg_dsn, attempts=3)
    try:
        send(replicas[0], 9, "fail", "d-bad")
        assert wait_until(lambda: store.counts()["dead"] == 1, timeout=60)
        dead = store.get("d-bad")
        assert dead is not None and dead.attempts == 3
        assert "failed on purpose" in (dead.last_error or "")
        runner = CliRunner()
        env = {"CVF_QUEUE_DSN": pg_dsn}
        listed = runner.invoke(cli, ["deliveries", "list", "--status", "dead"], env=env)
        assert listed.exit_code == 0, listed.output
        assert "dead: 1" in listed.output
        assert "d-bad" in listed.output and "failed on purpose" in listed.output
        refused = runner.invoke(cli, ["deliveries", "retry", "d-nope"], env=env)
        assert refused.exit_code == 1 and "d-nope: no such delivery" in refused.output
        with psycopg.connect(pg_dsn, autocommit=True) as conn:  # the cause is fixed
            conn.execute("INSERT INTO test_effects (step) VALUES ('fixed')")
        replayed = runner.invoke(cli, ["deliveries", "retry", "--all-dead"], env=env)
        assert replayed.exit_code == 0 and "queued d-bad again" in replayed.output
        assert wait_until(lambda: store.counts()["done"] == 1, timeout=60)
    finally:
        worker.close()
    assert [step for d, _, step in effects(pg_dsn) if d == "d-bad"].count("end") == 1


def test_a_delivery_whose_worker_is_killed_is_run_again_by_another_worker(
        replicas: list[LocalServer], store: DeliveryStore, pg_dsn: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    doomed = subprocess.Popen([sys.executable, "-m", "tests.queue_worker", pg_dsn], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        send(replicas[0], 11, "hang-once", "d-hang")
        send(replicas[1], 11, "sleep 0", "d-after")  # same issue: must wait its turn
        assert wait_until(lambda: ("d-hang", f"{REPO}#11", "start") in effects(pg_dsn),
                          timeout=60)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    assert store.get("d-hang").status == "running"  # type: ignore[union-attr]
    worker = ThreadWorker(pg_dsn)
    try:
        assert wait_until(lambda: store.counts()["done"] == 2, timeout=60), store.counts()
    finally:
        worker.close()
    assert store.get("d-hang").attempts == 2  # type: ignore[union-attr]
    order = [(d, step) for d, _, step in effects(pg_dsn)]
    assert order == [("d-hang", "start"), ("d-hang", "start"), ("d-hang", "end"),
                     ("d-after", "start"), ("d-after", "end")]


def test_a_delivery_stored_by_a_replica_that_died_before_queueing_it_is_still_run(
        store: DeliveryStore, pg_dsn: str) -> None:
    worker = ThreadWorker(pg_dsn)
    try:
        store.migrate()
        assert store.add("d-orphan", "issue_comment", comment(3, "sleep 0"))
        assert wait_until(lambda: store.counts()["done"] == 1, timeout=60), store.counts()
    finally:
        worker.close()


def test_the_tick_runs_on_one_replica_at_a_time_and_once_per_interval(
        store: DeliveryStore, pg_dsn: str) -> None:
    import threading

    store.migrate()
    ran: list[int] = []
    gate = threading.Barrier(4)

    def replica(n: int) -> None:
        gate.wait()
        guarded_tick(store, lambda: ran.append(n) or __import__("time").sleep(0.3), 60)

    threads = [threading.Thread(target=replica, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ran) == 1
    assert guarded_tick(store, lambda: ran.append(9), 60) is False  # not due yet
    assert guarded_tick(store, lambda: ran.append(9), 0.001) is True


def test_worker_and_deliveries_need_a_queue_dsn() -> None:
    result = CliRunner().invoke(cli, ["deliveries", "list"], env={"CVF_QUEUE_DSN": ""})
    assert result.exit_code == 1
    assert "no delivery queue is configured: CVF_QUEUE_DSN is not set" in result.output


def test_delivery_ids_are_unique_keys(store: DeliveryStore) -> None:
    store.migrate()
    assert store.add(f"d-{uuid.uuid4()}", "issues", {"repository": {"full_name": REPO}})


def test_cvf_rfc_tick_skips_while_another_replica_ticks(pg_dsn: str, store: DeliveryStore
                                                        ) -> None:
    from bot.cli import CliState
    from bot.commands.rfc_governance import run_tick
    from bot.queue.store import TICK_LOCK
    from tests.fake_github import FakeGitHub

    store.migrate()
    state = CliState(root=".", config_path=None)
    state._config = parse_config("")
    said: list[str] = []

    def tick() -> int:
        return run_tick(state, repo="octo/demo", now=datetime(2026, 3, 1, tzinfo=UTC),
                        dry_run=False, env={"CVF_QUEUE_DSN": pg_dsn},
                        factory=lambda repo, inst=None, dry_run=False: FakeGitHub(repo),
                        echo=said.append)

    with psycopg.connect(pg_dsn, autocommit=True) as other:  # another replica's round
        other.execute("SELECT pg_advisory_lock(%s)", (TICK_LOCK,))
        assert tick() == 0
        assert said == ["tick skipped: another replica is ticking now (advisory lock)"]
    said.clear()
    assert tick() == 0 and said[-1].startswith("tick at 2026-03-01T00:00:00Z")


def test_two_cvf_serve_replicas_on_one_queue_tick_once_per_interval(
        pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import flask

    from bot.cli import CliState
    from bot.commands import github as commands
    from bot.events import Router
    from tests.fake_github import FakeGitHub

    ran: list[str] = []
    router = Router()

    @router.tick
    def tick(github: Any, config: Any, now: datetime) -> None:
        ran.append(github.repo)

    monkeypatch.setenv("CVF_WEBHOOK_SECRET", "s")
    monkeypatch.setenv("CVF_QUEUE_DSN", pg_dsn)
    monkeypatch.setattr("bot.app.load_handlers", lambda: router)
    monkeypatch.setattr("bot.app.factory_from_config", lambda config, env: (
        lambda repo, inst=None, dry_run=False: FakeGitHub(repo)))
    monkeypatch.setattr(flask.Flask, "run", lambda self, host, port, threaded: None)
    for _ in range(2):  # two replicas, both with their ticker thread
        state = CliState(root=".", config_path=None)
        state._config = parse_config("server:\n  tick_interval: 1h\n")
        commands.serve_app(state, host="127.0.0.1", port=9, ticker=True, repos=("octo/demo",))
    threading.Event().wait(1.5)
    assert ran == ["octo/demo"]


def test_a_second_run_on_the_same_issue_waits_for_a_run_taken_for_dead_to_finish(
        replicas: list[LocalServer], store: DeliveryStore, pg_dsn: str) -> None:
    """A worker slow to send its heartbeat is taken for dead and its delivery started
    again: the subject's advisory lock (still held by the slow run) makes the new run
    wait, so two runs never touch one issue at once."""
    from bot.queue.store import SUBJECT_LOCKS

    worker = ThreadWorker(pg_dsn)
    try:
        with psycopg.connect(pg_dsn, autocommit=True) as slow_run:
            slow_run.execute("SELECT pg_advisory_lock(%s, hashtext(%s))",
                             (SUBJECT_LOCKS, f"{REPO}#21"))
            send(replicas[0], 21, "sleep 0", "d-waits")
            assert wait_until(lambda: store.get("d-waits").status == "running",  # type: ignore[union-attr]
                              timeout=30)
            import time
            time.sleep(1.0)
            assert ("d-waits", f"{REPO}#21", "start") not in effects(pg_dsn)
        assert wait_until(lambda: store.counts()["done"] == 1, timeout=30)
    finally:
        worker.close()


def test_the_maintenance_round_keeps_the_job_statistics_fresh_after_a_burst(
        pg_dsn: str, store: DeliveryStore) -> None:
    """A burst of deliveries fills procrastinate's jobs table within seconds; until its
    statistics are refreshed the planner takes it for nearly empty and every job fetch
    checks the lock of every waiting job (75-130 ms each with 3,700 waiting in
    bench/scaleout.py, 1.5 ms once analyzed)."""
    from bot.queue.worker import DeliveryQueue

    def todo_estimate(conn: Any) -> float:
        plan = conn.execute("EXPLAIN (FORMAT JSON) SELECT id FROM procrastinate_jobs "
                            "WHERE status = 'todo'").fetchone()[0]
        return float(plan[0]["Plan"]["Plan Rows"])

    queue = DeliveryQueue(pg_dsn, store=store)
    queue.ready()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("ANALYZE procrastinate_jobs")
        assert not store.refresh_job_statistics()  # nothing changed: no ANALYZE
        conn.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, lock, "
                     "queueing_lock, args) SELECT 'cvf-deliveries', 'cvf.deliver', "
                     "'o/r#' || (i % 150), 'delivery:' || i, '{}' "
                     "FROM generate_series(1, 3000) AS i")
        conn.execute("SELECT pg_stat_force_next_flush()")
        assert todo_estimate(conn) < 100
    assert wait_until(store.refresh_job_statistics, timeout=10)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert todo_estimate(conn) > 2500
    assert not store.refresh_job_statistics()
