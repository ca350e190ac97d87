"""Running deliveries from the queue: procrastinate does the queueing, we do the work.

Why procrastinate (and not pgqueuer): both are maintained PostgreSQL queues built on
``SELECT … FOR UPDATE SKIP LOCKED`` and LISTEN/NOTIFY. procrastinate has, built in, the
three things this bot needs: a job ``lock`` (jobs sharing one run one at a time, in the
order they were deferred: our per pull request / issue ordering), a ``queueing_lock``
(one waiting job per delivery id), and worker heartbeats with a query for the jobs of a
dead worker (a ``kill -9`` leaves them retried). It speaks psycopg 3 with its pool, runs
synchronous tasks in threads (our handlers and PyGithub are synchronous) and defers from
synchronous code (gunicorn). pgqueuer is asyncpg-first and serialises per entrypoint, not
per key, so per-RFC ordering and stalled-job recovery would be ours to write.

One worker process runs ``concurrency`` deliveries at a time; ordering holds across any
number of processes and machines because the lock lives in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.config import Config, ConfigError
from bot.events import Event, Router
from bot.github.delivery import RepoConfigCache, close_port, dispatch
from bot.github.factory import GitHubFactory
from bot.queue.schema import ensure_schema
from bot.queue.store import MAINTENANCE_LOCK, DeliveryStore, lock_key

log = logging.getLogger("cvf.worker")

TASK = "cvf.deliver"
QUEUE = "cvf-deliveries"


# procrastinate's own SQL entry point for deferring (what ``Task.defer`` runs), called in
# our transaction so that the delivery row and its job commit together. Its name carries
# a version (``_v1``) that procrastinate keeps stable across its schema migrations.
DEFER_SQL = ("SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(%s, %s, 0, %s, %s, %s, NULL)"
             "::procrastinate_job_to_defer_v1]))")


class _Duplicate(Exception):
    pass


class DeliveryFailed(Exception):
    """A delivery's handlers failed; procrastinate schedules the next attempt."""


def procrastinate_app(dsn: str) -> Any:
    from procrastinate import App, PsycopgConnector

    return App(connector=PsycopgConnector(conninfo=dsn))


class DeliveryQueue:
    """The webhook side: store the delivery, defer its job. Opened on first use."""

    def __init__(self, dsn: str, *, store: DeliveryStore | None = None) -> None:
        self.dsn = dsn
        self.store = store or DeliveryStore(dsn)
        self._app: Any = None
        self._ready = False
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        self.ready()
        with self._lock:
            if self._app is None:
                app = procrastinate_app(self.dsn)
                app.open(self.store.pool)
                self._app = app
        return self._app

    def submit(self, delivery_id: str, event: str, payload: dict[str, Any],
               payload_json: str | None = None) -> tuple[str, str]:
        """Store the delivery and queue its job in one transaction (one commit, so one
        disk flush per delivery). Returns (status, delivery id): "queued", or
        "duplicate" for an id already stored or queued."""
        import psycopg
        from psycopg.types.json import Jsonb

        self.ready()
        delivery_id = delivery_id or f"cvf-{uuid.uuid4()}"
        repo = str((payload.get("repository") or {}).get("full_name", ""))
        from bot.queue.store import subject_number

        with self.store.connection() as conn:
            try:
                with conn.transaction():
                    row = conn.execute(DEFER_SQL, (
                        QUEUE, TASK, lock_key(repo, subject_number(payload)),
                        f"delivery:{delivery_id}", Jsonb({"delivery": delivery_id}))).fetchone()
                    if not self.store.add(delivery_id, event, payload, payload_json,
                                          job_id=row[0] if row else None, conn=conn):
                        raise _Duplicate
            except (_Duplicate, psycopg.errors.UniqueViolation):
                return "duplicate", delivery_id
        return "queued", delivery_id

    def ready(self) -> None:
        """Create the tables on first use in this process."""
        with self._lock:
            if not self._ready:
                ensure_schema(self.store)
                self._ready = True

    @staticmethod
    def defer(app: Any, delivery_id: str, payload: dict[str, Any]) -> int:
        from bot.queue.store import subject_number

        repo = str((payload.get("repository") or {}).get("full_name", ""))
        job: int = app.configure_task(
            TASK, queue=QUEUE, lock=lock_key(repo, subject_number(payload)),
            queueing_lock=f"delivery:{delivery_id}").defer(delivery=delivery_id)
        return job

    def requeue(self, delivery_id: str) -> int:
        """Defer a fresh job for a stored delivery (an orphan, or a dead one replayed);
        0 when one is already waiting."""
        from procrastinate.exceptions import AlreadyEnqueued

        delivery = self.store.get(delivery_id)
        if delivery is None:
            raise KeyError(delivery_id)
        subject: dict[str, Any] = {"repository": {"full_name": delivery.repo}}
        if delivery.number is not None:
            subject["issue"] = {"number": delivery.number}
        try:
            job_id = self.defer(self.app, delivery_id, subject)
        except AlreadyEnqueued:
            return 0
        self.store.set_job(delivery_id, job_id)
        return job_id

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
        self.store.close()


@dataclass
class DeliveryRunner:
    """Runs one stored delivery through the handlers, exactly as the webhook app would."""

    store: DeliveryStore
    config: Config
    router: Router
    factory: Callable[[], GitHubFactory]
    clock: Callable[[], datetime]

    def __post_init__(self) -> None:
        self.configs = RepoConfigCache(self.config)

    def __call__(self, delivery_id: str, job_id: int, final: bool) -> str:
        delivery = self.store.start(delivery_id, job_id)
        if delivery is None:
            log.info(json.dumps({"delivery": delivery_id, "outcome": "already_done"}))
            return "already_done"
        started = time.perf_counter()
        payload = delivery.payload or {}
        event = Event(name=delivery.event, payload=payload, config=self.config,
                      delivery_id=delivery.id, now=self.clock())
        error: str
        try:
            with self.store.subject_lock(lock_key(delivery.repo, delivery.number)):
                github = self.factory()(event.repo, event.installation_id)
                try:
                    event.config = self.configs.get(github, payload)
                    outcome = dispatch(event, github, self.router)
                finally:
                    close_port(github)
        except ConfigError as exc:  # the repository's config: a retry cannot fix it
            problems = " | ".join(exc.problems)
            self._log(delivery_id, "dead", attempt=delivery.attempts, error=problems)
            self.store.finish(delivery_id, "dead", f"invalid configuration: {problems}")
            return "dead"
        except Exception as exc:  # GitHub down, credentials, a bug: try again later
            error = f"{type(exc).__name__}: {exc}"
        else:
            if outcome.status != "failed":
                self.store.finish(delivery_id, "done")
                self._log(delivery_id, outcome.status, attempt=delivery.attempts,
                          event=event.name, repo=event.repo, handlers=outcome.handlers,
                          ms=round((time.perf_counter() - started) * 1000, 1))
                return "done"
            error = " | ".join(outcome.errors)
        status = "dead" if final else "retrying"
        self.store.finish(delivery_id, status, error)
        self._log(delivery_id, status, attempt=delivery.attempts, error=error)
        raise DeliveryFailed(error)

    @staticmethod
    def _log(delivery: str, outcome: str, **fields: Any) -> None:
        (log.error if outcome == "dead" else log.info)(
            json.dumps({"delivery": delivery, "outcome": outcome, **fields}))


@dataclass
class WorkerSettings:
    concurrency: int = 4
    attempts: int = 5
    retry_wait: int = 10
    heartbeat: float = 10.0
    stalled_after: float = 30.0
    sweep_every: float = 5.0
    orphan_after: float = 60.0
    tick_interval: float | None = 300.0
    # New jobs wake a worker at once (LISTEN/NOTIFY); a job held back by its issue's lock
    # is only found by polling once the one before it finishes.
    poll: float = 1.0
    name: str | None = None
    # Retention (server.queue_retention): done deliveries and finished jobs older than
    # this go, checked at most every ``prune_every`` seconds across all workers, at most
    # ``prune_batches`` batches of ``prune_batch`` rows per maintenance round (a backlog
    # continues in the next rounds, so stalled jobs are never kept waiting). None: never.
    retention: float | None = None
    prune_every: float = 3600.0
    prune_batch: int = 1000
    prune_batches: int = 20


def worker_app(dsn: str, runner: Callable[[str, int, bool], str],
               settings: WorkerSettings) -> Any:
    from procrastinate import RetryStrategy

    app = procrastinate_app(dsn)
    retries = max(settings.attempts - 1, 0)
    # procrastinate reads max_attempts=0 as "retry forever": one attempt is no retry.
    retry = RetryStrategy(max_attempts=retries, wait=settings.retry_wait,
                          linear_wait=settings.retry_wait) if retries else False

    @app.task(name=TASK, queue=QUEUE, pass_context=True, retry=retry)
    def deliver(context: Any, delivery: str) -> str:
        return runner(delivery, context.job.id, context.job.attempts >= retries)

    return app


async def maintenance(app: Any, queue: DeliveryQueue, settings: WorkerSettings) -> None:
    """Every few seconds, on the one worker holding the maintenance lock: retry the jobs
    of dead workers, queue deliveries whose replica died before deferring them, and
    (when due) prune what the retention lets go."""
    leader: Any = None
    more = False
    while True:
        try:
            if leader is None:
                leader = await asyncio.to_thread(queue.store.hold_lock, MAINTENANCE_LOCK)
            if leader is not None:
                await sweep(app, queue, settings)
                more = await upkeep(app, queue.store, settings, more)
        except Exception:
            log.exception("maintenance round failed")
            if leader is not None:
                leader.close()
                leader = None
        await asyncio.sleep(settings.sweep_every)


async def sweep(app: Any, queue: DeliveryQueue, settings: WorkerSettings) -> dict[str, int]:
    """One maintenance round; returns what it did."""
    from procrastinate.jobs import Status

    done = {"stalled_retried": 0, "stalled_dead": 0, "orphans_queued": 0, "analyzed": 0}
    manager = app.job_manager
    store = queue.store
    done["analyzed"] = int(await asyncio.to_thread(store.refresh_job_statistics))
    for job in await manager.get_stalled_jobs(task_name=TASK,
                                              seconds_since_heartbeat=settings.stalled_after):
        delivery = str(job.task_kwargs.get("delivery", ""))
        try:
            if job.attempts + 1 >= settings.attempts:
                await manager.finish_job(job, Status.FAILED, False)
                await asyncio.to_thread(store.finish, delivery, "dead",
                                        "its worker died on every attempt")
                done["stalled_dead"] += 1
            else:
                await manager.retry_job(job)
                await asyncio.to_thread(store.finish, delivery, "retrying",
                                        "its worker died while running it")
                done["stalled_retried"] += 1
        except Exception:  # finished meanwhile, or another sweeper was first
            log.exception("cannot recover stalled job %s", job.id)
            continue
        log.warning(json.dumps({"delivery": delivery, "job": job.id, "outcome": "stalled",
                                "attempts": job.attempts + 1}))
    for delivery_id in await asyncio.to_thread(store.orphans, settings.orphan_after):
        await asyncio.to_thread(queue.requeue, delivery_id)
        done["orphans_queued"] += 1
    return done


FINISHED = ("succeeded", "failed", "cancelled", "aborted")  # procrastinate's final states


async def upkeep(app: Any, store: DeliveryStore, settings: WorkerSettings,
                 more: bool) -> bool:
    """The retention part of a maintenance round: runs when due (or right away again when
    the last round stopped at its batch cap); True while rows are left to prune."""
    if settings.retention is None:
        return False
    if not more and not await asyncio.to_thread(store.due, "prune", settings.prune_every):
        return False
    deliveries, finished = await asyncio.to_thread(
        store.prune, settings.retention, batch=settings.prune_batch,
        max_batches=settings.prune_batches)
    jobs = await prune_jobs(app, settings.retention) if finished else 0
    if deliveries or jobs:
        log.info(json.dumps({"pruned": {"deliveries": deliveries, "jobs": jobs},
                             "older_than_s": settings.retention}))
    return not finished


async def prune_jobs(app: Any, older_than: float) -> int:
    """Delete our queue's finished jobs (and their events) older than ``older_than``
    seconds, whole hours (procrastinate's unit); returns how many went.

    procrastinate's own helper does it (``JobManager.delete_old_jobs``, what its builtin
    ``remove_old_jobs`` task runs). It is one statement, not batched; that is acceptable
    because workers delete each successful job as it finishes (``delete_jobs=
    "successful"``), so what is left for it are failed jobs, at most one per dead
    delivery, a small set. Failed jobs go too: the delivery row keeps the dead state,
    the error and the payload, all ``cvf deliveries retry`` needs (it defers a fresh
    job), so no failure is lost with them."""
    count = ("SELECT count(*) AS n FROM procrastinate_jobs WHERE queue_name = %(queue)s "
             "AND status = ANY(%(statuses)s::procrastinate_job_status[])")
    args = {"queue": QUEUE, "statuses": list(FINISHED)}
    before = await app.connector.execute_query_one_async(count, **args)
    await app.job_manager.delete_old_jobs(nb_hours=int(older_than // 3600), queue=QUEUE,
                                          include_failed=True, include_cancelled=True,
                                          include_aborted=True)
    after = await app.connector.execute_query_one_async(count, **args)
    return max(int(before["n"]) - int(after["n"]), 0)


def prune_now(store: DeliveryStore, older_than: float, *, dead: bool = False
              ) -> tuple[int, int]:
    """``cvf deliveries prune``: every batch at once; returns (deliveries, jobs) deleted."""
    deliveries, _ = store.prune(older_than, dead=dead)

    async def jobs() -> int:
        app = procrastinate_app(store.dsn)
        async with app.open_async():
            return await prune_jobs(app, older_than)

    return deliveries, asyncio.run(jobs())


def run_worker(dsn: str, runner: DeliveryRunner, settings: WorkerSettings,
               tick: Callable[[], object] | None = None,
               stop: threading.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or until ``stop`` is set, for a worker in a thread):
    jobs, the maintenance round and, on one replica at a time, the tick."""
    store = runner.store
    queue = DeliveryQueue(dsn, store=store)
    ensure_schema(store)
    app = worker_app(dsn, runner, settings)

    async def main() -> None:
        # procrastinate runs synchronous tasks on the loop's default executor, which holds
        # only min(32, cores + 4) threads: size it for the concurrency asked for (handlers
        # mostly wait on GitHub), plus the maintenance round and the tick.
        from concurrent.futures import ThreadPoolExecutor

        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=settings.concurrency + 4,
                               thread_name_prefix="cvf-delivery"))
        async with app.open_async():
            work = asyncio.create_task(app.run_worker_async(
                queues=[QUEUE], concurrency=settings.concurrency, name=settings.name,
                update_heartbeat_interval=settings.heartbeat,
                stalled_worker_timeout=settings.stalled_after, delete_jobs="successful",
                fetch_job_polling_interval=settings.poll,
                install_signal_handlers=stop is None))
            tasks = [asyncio.create_task(maintenance(app, queue, settings))]
            if tick is not None and settings.tick_interval:
                tasks.append(asyncio.create_task(ticker(store, tick, settings.tick_interval)))
            if stop is not None:
                tasks.append(asyncio.create_task(_cancel_when(stop, work)))
            try:
                await work
            except asyncio.CancelledError:
                if stop is None or not stop.is_set():
                    raise
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
    queue.close()


async def _cancel_when(stop: threading.Event, work: asyncio.Task[None]) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.05)
    work.cancel()


async def ticker(store: DeliveryStore, tick: Callable[[], object], interval: float) -> None:
    while True:
        try:
            await asyncio.to_thread(guarded_tick, store, tick, interval)
        except Exception:
            log.exception("tick round failed")
        await asyncio.sleep(min(interval, 30.0))


def guarded_tick(store: DeliveryStore, tick: Callable[[], object], interval: float) -> bool:
    """Run ``tick`` if it is this replica's turn; True when it ran."""
    with store.tick_turn("tick", interval) as mine:
        if mine:
            tick()
            log.info(json.dumps({"tick": "ran"}))
        return mine
