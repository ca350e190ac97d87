"""Where execution records live, and the rollups that let reports skip the raw rows.

One small interface, ``MetricsStore``; the embedded default is SQLite (``open_store``),
created on first use, in WAL mode, with a versioned schema. Callers that produce
records (the CLI, the API, the routing handler) use ``add_many`` or ``ingest_lines``;
readers (aggregation, alerts, the SSE stream) use the rollup queries and never load
every row.

Why rollups at ingest: a scan of 1M raw rows takes about a second and exact
percentiles need a sort, while a report must stay fast at any size. Each record is
folded, while it is written, into per-minute, per-hour and per-day buckets (by
risk/decision, by agent, by skill) with a log-bucketed latency histogram whose bins
are 1% wide, so any percentile is read back within 0.5% of its true value. A report
touches at most ~30 day buckets, ~46 hour buckets and ~118 minute buckets per table,
however many records there are.

All writes of one call happen in one transaction: a bad record, an exception or a
killed process leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import math
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from bot.errors import InputError
from bot.metrics.record import (
    MAX_PROBLEMS,
    ExecutionMetric,
    RecordError,
    check,
    content_id,
)

_fast_loads: Callable[[str], Any] = json.loads
try:  # optional: about twice as fast to decode (pip install 'cvf-governance[fast]')
    from orjson import loads as _orjson_loads

    _fast_loads = _orjson_loads
except ImportError:  # pragma: no cover - the standard library does the same, slower
    pass

DEFAULT_PATH = ".cvf/metrics.db"
MINUTE, HOUR, DAY = 60, 3600, 86400
RESOLUTIONS = (DAY, HOUR, MINUTE)
HIST_RATIO = 1.01  # bin width; the bin's geometric middle is within 0.5% of any value in it
_INV_LOG_RATIO = 1.0 / math.log(HIST_RATIO)
ZERO_BIN = -(2**31)  # values below 1 µs (or exactly 0)
LATENCY, APPROVAL_TIME = 0, 1  # histogram kinds: latency (ms), time to approve (s)
CHUNK = 20_000

# The schema only moves forward; each entry runs once, in order, in a transaction.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
    CREATE TABLE executions (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        ts REAL NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE roll_main (
        res INTEGER, bucket INTEGER, risk TEXT, decision TEXT,
        n INTEGER, ok INTEGER, lat_sum REAL, audit_ok INTEGER,
        needed INTEGER, granted INTEGER, rejected INTEGER,
        PRIMARY KEY (res, bucket, risk, decision)) WITHOUT ROWID;
    CREATE TABLE roll_agent (
        res INTEGER, bucket INTEGER, agent TEXT,
        n INTEGER, err INTEGER, lat_sum REAL, last_ts REAL,
        PRIMARY KEY (res, bucket, agent)) WITHOUT ROWID;
    CREATE TABLE roll_skill (
        res INTEGER, bucket INTEGER, skill TEXT, risk TEXT,
        n INTEGER, err INTEGER, lat_sum REAL,
        PRIMARY KEY (res, bucket, skill, risk)) WITHOUT ROWID;
    CREATE TABLE roll_hist (
        res INTEGER, bucket INTEGER, kind INTEGER, bin INTEGER, n INTEGER,
        PRIMARY KEY (res, bucket, kind, bin)) WITHOUT ROWID;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE alert_issues (key TEXT PRIMARY KEY, number INTEGER NOT NULL,
                               opened_at TEXT NOT NULL);
    """),
)

Piece = tuple[int, int, int]  # (resolution seconds, start epoch, end epoch)


@dataclass(frozen=True)
class IngestResult:
    added: int
    duplicates: int

    @property
    def seen(self) -> int:
        return self.added + self.duplicates


class MetricsStore(Protocol):
    """What producers and readers of execution records may rely on."""

    def add_many(self, records: Iterable[ExecutionMetric | dict[str, Any]], *,
                 default_source: str = "api") -> IngestResult: ...
    def ingest_lines(self, lines: Iterable[str | bytes], *, where: str = "input",
                     default_source: str = "jsonl") -> IngestResult: ...
    def export_jsonl(self, out: IO[str], since: datetime | None = None,
                     until: datetime | None = None) -> int: ...
    def records_after(self, seq: int, limit: int = 100) -> list[tuple[int, dict[str, Any]]]: ...
    def bodies_after(self, seq: int) -> Iterator[tuple[int, float, str]]: ...
    def last_seq(self) -> int: ...
    def main_rows(self, pieces: Sequence[Piece]) -> list[tuple[Any, ...]]: ...
    def agent_rows(self, pieces: Sequence[Piece]) -> list[tuple[Any, ...]]: ...
    def skill_rows(self, pieces: Sequence[Piece]) -> list[tuple[Any, ...]]: ...
    def histogram(self, pieces: Sequence[Piece], kind: int) -> dict[int, int]: ...
    def agents_last_seen(self, since: float) -> dict[str, float]: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def alert_issues(self) -> dict[str, int]: ...
    def remember_alert_issue(self, key: str, number: int) -> None: ...
    def forget_alert_issue(self, key: str) -> None: ...
    def close(self) -> None: ...


def open_store(path: str | Path = DEFAULT_PATH) -> SqliteStore:
    """The SQLite store at ``path`` (``":memory:"`` for a throwaway one), created on first use."""
    return SqliteStore(path)


def bin_of(value: float) -> int:
    return math.floor(math.log(value) * _INV_LOG_RATIO) if value >= 1e-3 else ZERO_BIN


def bin_value(index: int) -> float:
    return 0.0 if index == ZERO_BIN else HIST_RATIO ** (index + 0.5)


def percentile(hist: dict[int, int], p: float) -> float | None:
    """Nearest-rank percentile from a histogram (``None`` when it is empty)."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(p / 100.0 * total))
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return bin_value(index)
    return bin_value(max(hist))


def pieces(since: int, until: int, max_res: int = DAY) -> list[Piece]:
    """Cover ``[since, until)`` (whole minutes) with the fewest buckets up to ``max_res`` long."""
    out: list[Piece] = []

    def cover(lo: int, hi: int, levels: tuple[int, ...]) -> None:
        if lo >= hi or not levels:
            return
        res = levels[0]
        start = -(-lo // res) * res
        end = hi // res * res
        if start < end:
            cover(lo, start, levels[1:])
            out.append((res, start, end))
            cover(end, hi, levels[1:])
        else:
            cover(lo, hi, levels[1:])

    cover(since // MINUTE * MINUTE, -(-until // MINUTE) * MINUTE,
          tuple(r for r in RESOLUTIONS if r <= max_res))
    return sorted(out, key=lambda p: p[1])


_TEMP_TABLES = (
    "CREATE TEMP TABLE IF NOT EXISTS m_main (b INTEGER, risk TEXT, decision TEXT, n INTEGER, "
    "ok INTEGER, lat_sum REAL, audit_ok INTEGER, needed INTEGER, granted INTEGER, "
    "rejected INTEGER)",
    "CREATE TEMP TABLE IF NOT EXISTS m_agent (b INTEGER, agent TEXT, n INTEGER, err INTEGER, "
    "lat_sum REAL, last_ts REAL)",
    "CREATE TEMP TABLE IF NOT EXISTS m_skill (b INTEGER, skill TEXT, risk TEXT, n INTEGER, "
    "err INTEGER, lat_sum REAL)",
    "CREATE TEMP TABLE IF NOT EXISTS m_hist (b INTEGER, kind INTEGER, bin INTEGER, n INTEGER)",
)
_M = f"CAST(ts / {MINUTE} AS INTEGER) * {MINUTE}"
_MINUTE_SQL = {
    "m_main": f"INSERT INTO m_main SELECT {_M} AS b, risk, decision, COUNT(*), SUM(ok), "  # noqa: S608 - fixed names
              "SUM(lat), SUM(audit_ok), SUM(needed), SUM(granted), SUM(rejected) "
              "FROM stage GROUP BY b, risk, decision",
    "m_agent": f"INSERT INTO m_agent SELECT {_M} AS b, agent, COUNT(*), COUNT(*) - SUM(ok), "  # noqa: S608 - fixed names
               "SUM(lat), MAX(ts) FROM stage GROUP BY b, agent",
    "m_skill": f"INSERT INTO m_skill SELECT {_M} AS b, skill, risk, COUNT(*), "  # noqa: S608 - fixed names
               "COUNT(*) - SUM(ok), SUM(lat) FROM stage GROUP BY b, skill, risk",
    "m_hist": f"INSERT INTO m_hist SELECT {_M} AS b, {LATENCY}, lat_bin, COUNT(*) FROM stage "  # noqa: S608 - fixed names
              f"GROUP BY b, lat_bin UNION ALL SELECT {_M} AS b, {APPROVAL_TIME}, appr_bin, "
              "COUNT(*) FROM stage WHERE appr_bin IS NOT NULL GROUP BY b, appr_bin",
}


def _rollup_sql() -> list[str]:
    """Fold the chunk's minute sums into each resolution, one upsert per minute row.

    No GROUP BY: sorting the minute rows by hour or day bucket cost more than the
    upserts it saved (consecutive rows mostly hit the same B-tree page), about 10% of
    ingest time at 200k-1M records."""
    out = []
    for res in RESOLUTIONS:
        b = f"b / {res} * {res}"
        out += [
            f"INSERT INTO roll_main SELECT {res}, {b}, risk, decision, n, ok, "  # noqa: S608 - fixed names
            "lat_sum, audit_ok, needed, granted, rejected "
            "FROM m_main WHERE true "
            "ON CONFLICT DO UPDATE SET n=n+excluded.n, ok=ok+excluded.ok, "
            "lat_sum=lat_sum+excluded.lat_sum, audit_ok=audit_ok+excluded.audit_ok, "
            "needed=needed+excluded.needed, granted=granted+excluded.granted, "
            "rejected=rejected+excluded.rejected",
            f"INSERT INTO roll_agent SELECT {res}, {b}, agent, n, err, "  # noqa: S608 - fixed names
            "lat_sum, last_ts FROM m_agent WHERE true "
            "ON CONFLICT DO UPDATE SET n=n+excluded.n, err=err+excluded.err, "
            "lat_sum=lat_sum+excluded.lat_sum, last_ts=MAX(last_ts, excluded.last_ts)",
            f"INSERT INTO roll_skill SELECT {res}, {b}, skill, risk, n, err, "  # noqa: S608 - fixed names
            "lat_sum FROM m_skill WHERE true "
            "ON CONFLICT DO UPDATE SET n=n+excluded.n, err=err+excluded.err, "
            "lat_sum=lat_sum+excluded.lat_sum",
            f"INSERT INTO roll_hist SELECT {res}, {b}, kind, bin, n FROM m_hist "  # noqa: S608 - fixed names
            "WHERE true ON CONFLICT DO UPDATE SET n=n+excluded.n",
        ]
    return out


_ROLLUP_SQL = _rollup_sql()


def _stage_row(rid: str, ts: float, text: str, obj: dict[str, Any]) -> tuple[Any, ...]:
    """The columns a record contributes to the rollups, computed once while it is parsed."""
    latency = float(obj["latency_ms"])
    audit = obj.get("audit") or {}
    approval = obj.get("approval")
    needed = granted = rejected = 0
    appr_bin = None
    approval_recorded = True
    if approval:
        if approval.get("required"):
            needed = 1
            approval_recorded = bool(audit.get("approval_recorded"))
        if approval.get("granted"):
            granted = 1
            seconds = _seconds_between(approval.get("requested_at"), approval.get("decided_at"))
            if seconds is not None:
                appr_bin = bin_of(seconds)
        elif approval.get("rejected"):
            rejected = 1
    audit_ok = 1 if audit.get("report_posted") and approval_recorded else 0
    return (rid, ts, text, obj["risk_level"], obj["decision"], obj["agent"], obj["skill"],
            1 if obj["success"] else 0, latency, bin_of(latency), audit_ok, needed, granted,
            rejected, appr_bin)


def _seconds_between(start: Any, end: Any) -> float | None:
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


class _ChunkWriter:
    """Writes chunks on a second thread while the caller parses the next ones.

    SQLite lets go of the GIL while it runs a statement, so the rollup SQL of one chunk
    overlaps the JSON parsing of the next. Chunks are written in order, one at a time,
    on the caller's connection and inside the caller's transaction; at most two wait.
    """

    def __init__(self, write: Callable[[list[tuple[Any, ...]]], tuple[int, int]]):
        self.write = write
        self.queue: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue(maxsize=2)
        self.added = self.duplicates = 0
        self.error: BaseException | None = None
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="cvf-metrics-writer",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (chunk := self.queue.get()) is not None:
            if self.error is not None or self.stopping:
                continue  # drain: the caller is about to give up
            try:
                added, duplicates = self.write(chunk)
            except BaseException as exc:  # handed to the caller, which re-raises it
                self.error = exc
                continue
            self.added += added
            self.duplicates += duplicates

    def put(self, chunk: list[tuple[Any, ...]]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(chunk)

    def finish(self) -> tuple[int, int]:
        """Wait for every chunk; re-raise the writer's error if it had one."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.added, self.duplicates

    def stop(self) -> None:
        """Skip what is still queued and wait for the chunk in hand (idempotent)."""
        if self.thread.is_alive():
            self.stopping = True
            self.queue.put(None)
            self.thread.join()


class SqliteStore:
    """The embedded store. Not shared between threads: open one per thread or request."""

    def __init__(self, path: str | Path = DEFAULT_PATH):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA cache_size=-65536")
            self.db.execute("PRAGMA temp_store=MEMORY")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot open the metrics store: {exc}", where=self.path,
                             hint="point metrics.store at a SQLite file cvf created, "
                                  "or move this file away to start a new store") from None

    # -- schema -------------------------------------------------------------------
    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                        "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        current = self.schema_version()
        latest = MIGRATIONS[-1][0]
        if current > latest:
            raise InputError(f"the metrics store has schema version {current}, this cvf "
                             f"knows up to {latest}", where=self.path,
                             hint="upgrade cvf-governance")
        for version, script in MIGRATIONS:
            if version <= current:
                continue
            with self.transaction():
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                                (version, datetime.now(UTC).isoformat()))

    def schema_version(self) -> int:
        row = self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # -- writing ------------------------------------------------------------------
    def add_many(self, records: Iterable[ExecutionMetric | dict[str, Any]], *,
                 default_source: str = "api") -> IngestResult:
        """Store records (dataclasses or decoded JSON) in one transaction; all or nothing."""
        objs: list[dict[str, Any]] = []
        problems: list[str] = []
        for index, record in enumerate(records, start=1):
            obj = record.to_json() if isinstance(record, ExecutionMetric) else record
            problem = check(obj)
            if problem:
                problems.append(f"record {index}: {problem}")
                if len(problems) >= MAX_PROBLEMS:
                    break
            else:
                objs.append(obj)
        if problems:
            raise RecordError(problems)
        lines = (json.dumps(obj, separators=(",", ":")) for obj in objs)
        return self.ingest_lines(lines, where="record", default_source=default_source)

    def ingest_lines(self, lines: Iterable[str | bytes], *, where: str = "input",
                     default_source: str = "jsonl") -> IngestResult:
        """Validate and store JSONL lines in one transaction.

        A bad line rolls everything back; the error names up to ten bad lines
        (``where:line: reason``). Records whose id is already stored are counted as
        duplicates and change nothing, so re-importing a file is harmless.
        """
        added = duplicates = 0
        problems: list[str] = []
        chunk: list[tuple[Any, ...]] = []
        ids: set[str] = set()
        loads = _fast_loads
        fromiso = datetime.fromisoformat
        writer: _ChunkWriter | None = None
        with self.transaction():
            self._stage()
            try:
                for number, raw in enumerate(lines, start=1):
                    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                    text = text.strip()
                    if not text:
                        continue
                    try:
                        obj = loads(text)
                    except ValueError:
                        try:  # the standard parser accepts a little more and explains better
                            obj = json.loads(text)
                        except json.JSONDecodeError as exc:
                            problems.append(f"{where}:{number}: not valid JSON "
                                            f"({exc.msg} at column {exc.colno})")
                            if len(problems) >= MAX_PROBLEMS:
                                break
                            continue
                    problem = check(obj)
                    if problem:
                        problems.append(f"{where}:{number}: {problem}")
                        if len(problems) >= MAX_PROBLEMS:
                            break
                        continue
                    if problems:
                        continue  # only looking for more problems now
                    rid = obj.get("id")
                    if rid is None or "source" not in obj:
                        if rid is None:
                            rid = content_id(text)
                            obj = {"id": rid, **obj}
                        obj.setdefault("source", default_source)
                        text = json.dumps(obj, separators=(",", ":"))
                    if rid in ids:
                        duplicates += 1
                        continue
                    ids.add(rid)
                    chunk.append(_stage_row(rid, fromiso(obj["timestamp"]).timestamp(), text, obj))
                    if len(chunk) >= CHUNK:
                        if writer is None:
                            writer = _ChunkWriter(self._write_chunk)
                        writer.put(chunk)
                        chunk = []
                        ids.clear()
                if problems:
                    raise RecordError(problems)
                if writer is not None:
                    a, d = writer.finish()
                    added, duplicates = added + a, duplicates + d
                if chunk:
                    a, d = self._write_chunk(chunk)
                    added, duplicates = added + a, duplicates + d
            finally:
                if writer is not None:
                    writer.stop()  # before the rollback touches the connection
        return IngestResult(added=added, duplicates=duplicates)

    def _stage(self) -> None:
        for sql in _TEMP_TABLES:
            self.db.execute(sql)
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage (id TEXT, ts REAL, body TEXT, risk TEXT, "
            "decision TEXT, agent TEXT, skill TEXT, ok INTEGER, lat REAL, lat_bin INTEGER, "
            "audit_ok INTEGER, needed INTEGER, granted INTEGER, rejected INTEGER, "
            "appr_bin INTEGER)")
        self.db.execute("DELETE FROM stage")

    def _write_chunk(self, chunk: list[tuple[Any, ...]]) -> tuple[int, int]:
        """Insert one chunk's new records and fold them into every rollup, all inside SQLite
        (which lets go of the GIL while it works, so parsing the next chunk overlaps)."""
        db = self.db
        before = self.last_seq()
        db.executemany("INSERT INTO stage VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", chunk)
        fresh = db.execute("INSERT OR IGNORE INTO executions (id, ts, body) "
                           "SELECT id, ts, body FROM stage ORDER BY rowid").rowcount
        if fresh < len(chunk):
            db.execute("DELETE FROM stage WHERE id IN "
                       "(SELECT id FROM executions WHERE seq <= ?)", (before,))
        # Minute sums first (one pass over the chunk), then hours and days from those.
        for table, sql in _MINUTE_SQL.items():
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            db.execute(sql)
        for statement in _ROLLUP_SQL:
            db.execute(statement)
        db.execute("DELETE FROM stage")
        return fresh, len(chunk) - fresh

    # -- raw records --------------------------------------------------------------
    def export_jsonl(self, out: IO[str], since: datetime | None = None,
                     until: datetime | None = None) -> int:
        """Write stored records as JSONL, oldest first, exactly as received (plus ids)."""
        lo = since.timestamp() if since else float("-inf")
        hi = until.timestamp() if until else float("inf")
        count = 0
        cursor = self.db.execute(
            "SELECT body FROM executions WHERE ts >= ? AND ts < ? ORDER BY ts, seq", (lo, hi))
        for (body,) in cursor:
            out.write(body + "\n")
            count += 1
        return count

    def records_after(self, seq: int, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        rows = self.db.execute("SELECT seq, body FROM executions WHERE seq > ? ORDER BY seq "
                               "LIMIT ?", (seq, limit)).fetchall()
        return [(int(s), json.loads(body)) for s, body in rows]

    def bodies_after(self, seq: int) -> Iterator[tuple[int, float, str]]:
        """``(seq, timestamp, JSON text)`` of records stored after ``seq``, in that order."""
        yield from self.db.execute("SELECT seq, ts, body FROM executions WHERE seq > ? "
                                   "ORDER BY seq", (seq,))

    def last_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM executions").fetchone()
        return int(row[0] or 0)

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM executions").fetchone()[0])

    # -- rollups ------------------------------------------------------------------
    def _rows(self, table: str, columns: str, pieces: Sequence[Piece]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for res, start, end in pieces:
            out += self.db.execute(
                f"SELECT bucket, {columns} FROM {table} "  # noqa: S608 - fixed names
                "WHERE res = ? AND bucket >= ? AND bucket < ?", (res, start, end)).fetchall()
        return out

    def main_rows(self, pieces: Sequence[Piece]) -> list[tuple[Any, ...]]:
        """``(bucket, risk, decision, n, ok, lat_sum, audit_ok, needed, granted, rejected)``."""
        return self._rows("roll_main", "risk, decision, n, ok, lat_sum, audit_ok, needed, "
                          "granted, rejected", pieces)

    def agent_rows(self, pieces: Sequence[Piece]) -> list[tuple[Any, ...]]:
        """``(bucket, agent, n, err, lat_sum, last_ts)``."""
        return self._rows("roll_agent", "agent, n, err, lat_sum, last_ts", pieces)

    def skill_rows(self, pieces: Sequence[Piece]) -> list[tuple[Any, ...]]:
        """``(bucket, skill, risk, n, err, lat_sum)``."""
        return self._rows("roll_skill", "skill, risk, n, err, lat_sum", pieces)

    def histogram(self, pieces: Sequence[Piece], kind: int) -> dict[int, int]:
        """Merged histogram ``{bin: count}`` over the pieces."""
        hist: dict[int, int] = {}
        for res, start, end in pieces:
            for index, count in self.db.execute(
                    "SELECT bin, SUM(n) FROM roll_hist WHERE res = ? AND bucket >= ? "
                    "AND bucket < ? AND kind = ? GROUP BY bin", (res, start, end, kind)):
                hist[index] = hist.get(index, 0) + int(count)
        return hist

    def agents_last_seen(self, since: float) -> dict[str, float]:
        """Agents with any execution since ``since`` (epoch s) and their latest timestamp."""
        start = int(since // DAY * DAY)
        return {agent: float(ts) for agent, ts in self.db.execute(
            "SELECT agent, MAX(last_ts) FROM roll_agent WHERE res = ? AND bucket >= ? "
            "GROUP BY agent", (DAY, start))}

    # -- small state --------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT DO UPDATE "
                        "SET value = excluded.value", (key, value))

    def alert_issues(self) -> dict[str, int]:
        """Alert keys the bot opened an issue for and has not seen closed."""
        return {k: int(n) for k, n in self.db.execute("SELECT key, number FROM alert_issues")}

    def remember_alert_issue(self, key: str, number: int) -> None:
        self.db.execute("INSERT INTO alert_issues VALUES (?, ?, ?) ON CONFLICT DO UPDATE "
                        "SET number = excluded.number",
                        (key, number, datetime.now(UTC).isoformat()))

    def forget_alert_issue(self, key: str) -> None:
        self.db.execute("DELETE FROM alert_issues WHERE key = ?", (key,))
