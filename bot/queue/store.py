"""Deliveries kept in PostgreSQL: what arrived, what ran, what failed for good.

The ``cvf_deliveries`` row is the durable record of a delivery (its payload included);
the procrastinate job only says "run this one". The row is written first, so a replica
that dies between the row and the job loses nothing: the worker's maintenance round
defers a job for any row left without one. The delivery id is the primary key, so the
same delivery sent to two replicas is stored and queued once.

Statuses: ``queued`` (waiting for a worker), ``running``, ``retrying`` (failed, will run
again), ``done``, ``dead`` (failed every attempt, or failed in a way a retry cannot fix;
``cvf deliveries retry`` replays it).

Retention (``server.queue_retention``, 14 days by default): the worker maintenance round
deletes ``done`` rows that finished longer ago than that, in batches. ``dead`` rows are
kept until they are replayed (and then done) or pruned by hand (``cvf deliveries prune
--dead``): a failure is never dropped silently. The primary key is also the duplicate
guard, so it reaches back exactly as far as the retention: a delivery GitHub sends again
after its row was pruned is stored and run again (the handlers recompute state, so it
changes nothing twice). GitHub lets an admin redeliver for 3 days (7 on GitHub
Enterprise Server), hence the minimum of 3 days on the setting.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.pg import apply_migrations, connect_error

# Each entry moves the schema one version up; never edit a landed entry, append one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE cvf_deliveries (
        id text PRIMARY KEY,
        event text NOT NULL,
        action text,
        repo text NOT NULL,
        number integer,
        installation bigint,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'queued',
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        job_id bigint,
        received_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    );
    CREATE INDEX cvf_deliveries_status ON cvf_deliveries (status, received_at);
    CREATE TABLE cvf_ticks (name text PRIMARY KEY, last_run timestamptz NOT NULL);
    """,
    # Pruning finds finished deliveries by when they finished.
    "CREATE INDEX cvf_deliveries_finished ON cvf_deliveries (status, finished_at)",
)
COMPONENT = "queue"
JOBS_CHANGED = 500  # rows changed in procrastinate_jobs before its statistics are refreshed
STATUSES = ("queued", "running", "retrying", "done", "dead")

# Keys of the session advisory locks (constants no other application uses; bot.pg has
# the schema lock).
TICK_LOCK = 0x43564602
MAINTENANCE_LOCK = 0x43564603
SUBJECT_LOCKS = 0x4356  # first key of the two-key locks, one per pull request or issue


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    action: str | None
    repo: str
    number: int | None
    installation: int | None
    status: str
    attempts: int
    last_error: str | None
    received_at: datetime
    finished_at: datetime | None
    payload: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "event": self.event, "action": self.action, "repo": self.repo,
                "number": self.number, "status": self.status, "attempts": self.attempts,
                "last_error": self.last_error, "received_at": self.received_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


def subject_number(payload: dict[str, Any]) -> int | None:
    """The pull request or issue an event is about, if any."""
    for key in ("pull_request", "issue"):
        number = (payload.get(key) or {}).get("number")
        if isinstance(number, int):
            return number
    for key in ("check_run", "check_suite", "workflow_run"):
        pulls = (payload.get(key) or {}).get("pull_requests") or []
        if pulls and isinstance(pulls[0], dict) and isinstance(pulls[0].get("number"), int):
            return int(pulls[0]["number"])
    return None


def lock_key(repo: str, number: int | None) -> str:
    """Deliveries with the same key run one at a time, in the order they arrived."""
    return f"{repo}#{number}" if number is not None else repo


_COLUMNS = ("id, event, action, repo, number, installation, status, attempts, last_error, "
            "received_at, finished_at")


class DeliveryStore:
    """The deliveries table over a small psycopg connection pool (opened on first use)."""

    def __init__(self, dsn: str, *, pool_size: int = 4) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: Any = None

    @property
    def pool(self) -> Any:
        if self._pool is None:
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool(self.dsn, min_size=1, max_size=self.pool_size,
                                  kwargs={"autocommit": True}, open=False,
                                  name="cvf-deliveries")
            try:
                pool.open(wait=True, timeout=10)
            except Exception as exc:
                pool.close()
                raise connect_error(self.dsn, exc) from None
            self._pool = pool
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        with self.pool.connection() as conn:
            yield conn

    def migrate(self) -> int:
        with self.connection() as conn:
            return apply_migrations(conn, COMPONENT, MIGRATIONS)

    # -- the webhook side ---------------------------------------------------------------
    def add(self, delivery_id: str, event: str, payload: dict[str, Any],
            payload_json: str | None = None, *, job_id: int | None = None,
            conn: Any = None) -> bool:
        """Store a new delivery; False when this id is already stored (a duplicate).
        ``conn`` puts the insert in the caller's transaction (see ``DeliveryQueue``)."""
        repo = str((payload.get("repository") or {}).get("full_name", ""))
        installation = (payload.get("installation") or {}).get("id")
        action = payload.get("action")
        params = (delivery_id, event, action if isinstance(action, str) else None, repo,
                  subject_number(payload),
                  installation if isinstance(installation, int) else None,
                  payload_json if payload_json is not None else json.dumps(payload), job_id)
        query = ("INSERT INTO cvf_deliveries (id, event, action, repo, number, installation, "
                 "payload, job_id) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s) "
                 "ON CONFLICT (id) DO NOTHING RETURNING 1")
        if conn is not None:
            return conn.execute(query, params).fetchone() is not None
        with self.connection() as own:
            return own.execute(query, params).fetchone() is not None

    def set_job(self, delivery_id: str, job_id: int) -> None:
        with self.connection() as conn:
            conn.execute("UPDATE cvf_deliveries SET job_id = %s WHERE id = %s",
                         (job_id, delivery_id))

    # -- the worker side ----------------------------------------------------------------
    def start(self, delivery_id: str, job_id: int) -> Delivery | None:
        """Mark a delivery running and return it with its payload; None when it is done
        already (a replayed job) or unknown."""
        with self.connection() as conn:
            row = conn.execute(
                "UPDATE cvf_deliveries SET status = 'running', attempts = attempts + 1, "  # noqa: S608
                "job_id = %s WHERE id = %s AND status <> 'done' "
                f"RETURNING {_COLUMNS}, payload",
                (job_id, delivery_id)).fetchone()
        return _delivery(row, with_payload=True) if row else None

    @contextlib.contextmanager
    def subject_lock(self, key: str, wait: float = 300.0) -> Iterator[None]:
        """Hold the session advisory lock of one pull request or issue while its delivery
        runs. procrastinate's job lock already orders the jobs; this one also holds when a
        worker merely slow to send its heartbeat is taken for dead and its delivery is
        started again elsewhere: the second run waits for the first (at most ``wait``
        seconds, then it fails and is retried). A dead worker's lock dies with its
        connection."""
        with self.connection() as conn:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(wait * 1000)}ms",))
            try:
                conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (SUBJECT_LOCKS, key))
            finally:
                conn.execute("SELECT set_config('lock_timeout', '0', false)")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (SUBJECT_LOCKS, key))

    def finish(self, delivery_id: str, status: str, error: str | None = None) -> None:
        with self.connection() as conn:
            conn.execute(
                "UPDATE cvf_deliveries SET status = %s, last_error = %s, "
                "finished_at = CASE WHEN %s IN ('done', 'dead') THEN now() END WHERE id = %s",
                (status, error, status, delivery_id))

    def orphans(self, older_than: float) -> list[str]:
        """Queued deliveries that never got a job (their replica died in between)."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT id FROM cvf_deliveries WHERE status = 'queued' AND job_id IS NULL "
                "AND received_at < now() - make_interval(secs => %s) ORDER BY received_at",
                (older_than,)).fetchall()
        return [r[0] for r in rows]

    # -- operators ----------------------------------------------------------------------
    def prune(self, older_than: float, *, dead: bool = False, batch: int = 1000,
              max_batches: int | None = None) -> tuple[int, bool]:
        """Delete ``done`` (and, with ``dead``, ``dead``) deliveries that finished more than
        ``older_than`` seconds ago: ``batch`` rows per statement, each its own short
        transaction (rows another transaction holds are skipped, never waited for).
        Returns (rows deleted, True when nothing is left to delete; False when
        ``max_batches`` stopped it first)."""
        statuses = ["done", "dead"] if dead else ["done"]
        deleted = 0
        batches = 0
        with self.connection() as conn:
            while max_batches is None or batches < max_batches:
                cursor = conn.execute(
                    "DELETE FROM cvf_deliveries WHERE id IN (SELECT id FROM cvf_deliveries "
                    "WHERE status = ANY(%s) AND finished_at < now() - make_interval(secs => %s) "
                    "LIMIT %s FOR UPDATE SKIP LOCKED)", (statuses, older_than, batch))
                batches += 1
                deleted += cursor.rowcount
                if cursor.rowcount < batch:
                    return deleted, True
        return deleted, False

    def due(self, name: str, interval: float) -> bool:
        """True (once) when ``name`` last ran more than ``interval`` seconds ago, shared by
        every process through ``cvf_ticks``: one statement, so two callers never both
        get True."""
        with self.connection() as conn:
            row = conn.execute(
                "INSERT INTO cvf_ticks AS t (name, last_run) VALUES (%s, now()) "
                "ON CONFLICT (name) DO UPDATE SET last_run = now() "
                "WHERE t.last_run < now() - make_interval(secs => %s) RETURNING 1",
                (name, interval)).fetchone()
        return row is not None

    def list(self, status: str | None = None, limit: int = 50) -> list[Delivery]:
        with self.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM cvf_deliveries "  # noqa: S608 (constant columns)
                "WHERE %(status)s::text IS NULL OR status = %(status)s "
                "ORDER BY received_at DESC, id LIMIT %(limit)s",
                {"status": status, "limit": limit}).fetchall()
        return [_delivery(r) for r in rows]

    def get(self, delivery_id: str) -> Delivery | None:
        with self.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM cvf_deliveries WHERE id = %s",  # noqa: S608
                (delivery_id,)).fetchone()
        return _delivery(row) if row else None

    def counts(self) -> dict[str, int]:
        with self.connection() as conn:
            rows = conn.execute("SELECT status, count(*) FROM cvf_deliveries GROUP BY status")
            found = dict(rows.fetchall())
        return {status: int(found.get(status, 0)) for status in STATUSES}

    def requeue(self, delivery_id: str) -> None:
        """A dead delivery goes back to ``queued`` with its attempts reset."""
        with self.connection() as conn:
            conn.execute("UPDATE cvf_deliveries SET status = 'queued', attempts = 0, "
                         "job_id = NULL, finished_at = NULL WHERE id = %s", (delivery_id,))

    def refresh_job_statistics(self, changed: int = JOBS_CHANGED) -> bool:
        """ANALYZE procrastinate's jobs table once ``changed`` rows changed since its last
        statistics; True when it did.

        The table swings from empty to thousands of waiting jobs within seconds (a burst
        of deliveries) and back. Autovacuum refreshes its statistics about once a minute
        at best; until then the planner believes the table still holds a handful of jobs
        and fetches each job by checking the lock of every waiting one (measured: 75-130
        ms per fetch with 3,700 waiting, 1.5 ms after ANALYZE), on the PostgreSQL server
        that also answers the webhook replicas. The maintenance round calls this every
        few seconds on one worker.
        """
        with self.connection() as conn:
            row = conn.execute("SELECT n_mod_since_analyze FROM pg_stat_user_tables "
                               "WHERE relid = to_regclass('procrastinate_jobs')").fetchone()
            if row is None or row[0] < changed:
                return False
            conn.execute("ANALYZE procrastinate_jobs")
        return True

    def hold_lock(self, key: int) -> Any:
        """A dedicated connection holding session advisory lock ``key``, or None when
        another process holds it. The lock lasts until the connection is closed (or its
        process dies): a leader chosen by PostgreSQL."""
        import psycopg

        try:
            conn = psycopg.connect(self.dsn, autocommit=True)
        except Exception as exc:
            raise connect_error(self.dsn, exc) from None
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if got and got[0]:
            return conn
        conn.close()
        return None

    # -- the tick -----------------------------------------------------------------------
    @contextlib.contextmanager
    def tick_turn(self, name: str, interval: float) -> Iterator[bool]:
        """Yield True to the one replica whose turn it is to tick.

        A session advisory lock makes the round exclusive (released by PostgreSQL if the
        holder dies); ``cvf_ticks`` records when it last ran, so replicas whose timers
        fire a little apart do not each run a round in the same interval (``interval``
        0: only the lock, for a round someone asked for by hand).
        """
        with self.connection() as conn:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (TICK_LOCK,)).fetchone()
            if not (got and got[0]):
                yield False
                return
            try:
                row = conn.execute(
                    "SELECT NOT EXISTS (SELECT 1 FROM cvf_ticks WHERE name = %s AND "
                    "last_run > now() - make_interval(secs => %s))",
                    (name, interval * 0.9)).fetchone()
                due = bool(row and row[0]) or interval <= 0
                if due:
                    conn.execute("INSERT INTO cvf_ticks (name, last_run) VALUES (%s, now()) "
                                 "ON CONFLICT (name) DO UPDATE SET last_run = now()", (name,))
                yield bool(due)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (TICK_LOCK,))


def _delivery(row: Any, *, with_payload: bool = False) -> Delivery:
    payload = row[11] if with_payload else None
    return Delivery(id=row[0], event=row[1], action=row[2], repo=row[3], number=row[4],
                    installation=row[5], status=row[6], attempts=row[7], last_error=row[8],
                    received_at=row[9], finished_at=row[10], payload=payload)
