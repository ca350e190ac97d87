"""A queue worker with a recording handler, for tests: in a thread or its own process.

The handler of ``issue_comment`` writes what it does into ``test_effects`` in the same
PostgreSQL database (start and end of each run, per delivery and subject), so a test can
check from outside any process: every delivery ran, none ran twice to the end, runs on
one subject never overlapped and kept the order. The comment body steers it:
``sleep 0.2`` waits, ``fail`` raises until a ``fixed`` row exists, ``hang-once`` blocks
its first run forever (the process is to be killed).
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from bot.config import Config, parse_config
from bot.events import Event, Router
from bot.github.port import GitHubPort
from bot.queue.store import DeliveryStore
from bot.queue.worker import DeliveryRunner, WorkerSettings, run_worker
from tests.fake_github import FakeGitHub

EFFECTS = """CREATE TABLE IF NOT EXISTS test_effects (
    seq bigserial PRIMARY KEY, delivery text, subject text, step text, at timestamptz)"""


def recording_router(dsn: str) -> Router:
    router = Router()

    @router.register("issue_comment", "created")
    def record(event: Event, github: GitHubPort) -> None:
        subject = f"{event.repo}#{event.payload['issue']['number']}"
        body = str(event.payload["comment"]["body"])
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO test_effects (delivery, subject, step, at) "
                         "VALUES (%s, %s, 'start', clock_timestamp())",
                         (event.delivery_id, subject))
            starts = conn.execute("SELECT count(*) FROM test_effects WHERE delivery = %s "
                                  "AND step = 'start'", (event.delivery_id,)).fetchone()
            if body == "hang-once" and starts and starts[0] == 1:
                time.sleep(3600)
            if body.startswith("sleep "):
                time.sleep(float(body.split()[1]))
            fixed = conn.execute("SELECT count(*) FROM test_effects WHERE step = 'fixed'"
                                 ).fetchone()
            if body == "fail" and not (fixed and fixed[0]):
                raise RuntimeError("the handler failed on purpose")
            conn.execute("INSERT INTO test_effects (delivery, subject, step, at) "
                         "VALUES (%s, %s, 'end', clock_timestamp())",
                         (event.delivery_id, subject))

    @router.tick
    def tick(github: GitHubPort, config: Config, now: datetime) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO test_effects (delivery, subject, step, at) "
                         "VALUES ('tick', %s, 'tick', clock_timestamp())", (github.repo,))
            time.sleep(0.3)

    return router


def make_runner(dsn: str) -> DeliveryRunner:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(EFFECTS)

    def factory() -> Any:
        return lambda repo, installation=None, dry_run=False: FakeGitHub(repo)

    return DeliveryRunner(store=DeliveryStore(dsn, pool_size=10), config=parse_config(""),
                          router=recording_router(dsn), factory=factory,
                          clock=lambda: datetime.now(UTC))


def tick_round(runner: DeliveryRunner) -> None:
    from bot.github.delivery import RepoConfigCache
    from bot.github.ticker import run_ticks

    run_ticks(runner.router, lambda repo, inst=None, dry_run=False: FakeGitHub(repo),
              [("octo/tick", None)], RepoConfigCache(runner.config), datetime.now(UTC))


def settings(**overrides: Any) -> WorkerSettings:
    base: dict[str, Any] = dict(concurrency=4, attempts=3, retry_wait=0, heartbeat=0.5,
                                stalled_after=2.0, sweep_every=0.3, orphan_after=1.0,
                                tick_interval=None, poll=0.1)
    return WorkerSettings(**{**base, **overrides})


class ThreadWorker:
    """``run_worker`` in a thread of this process, stopped with ``close()``."""

    def __init__(self, dsn: str, *, tick: bool = False, **overrides: Any) -> None:
        self.runner = make_runner(dsn)
        self.stop = threading.Event()
        tick_fn = (lambda: tick_round(self.runner)) if tick else None
        self.thread = threading.Thread(
            target=run_worker, args=(dsn, self.runner, settings(**overrides)),
            kwargs={"tick": tick_fn, "stop": self.stop}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


if __name__ == "__main__":  # python -m tests.queue_worker DSN: a worker process to kill
    run_worker(sys.argv[1], make_runner(sys.argv[1]), settings())
