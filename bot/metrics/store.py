"""Where execution records live, and the rollups that let reports skip the raw rows.

One small interface, ``MetricsStore``; the embedded default is SQLite (``open_store``),
created on first use, in WAL mode, with a versioned schema. Callers that produce
records (the CLI, the API, the routing handler) use ``add_many`` or ``ingest_lines``;
readers (aggregation, alerts, the SSE stream) ask for the ``rollup`` of a window and
never load every row.

Why rollups at ingest: a scan of 1M raw rows takes about a second and exact
percentiles need a sort, while a report must stay fast at any size. Each chunk of
records is folded, while it is written, into per-minute, per-hour and per-day buckets,
one row per bucket (see ``bot.metrics.rollup`` for what a row holds). A report reads
at most ~30 day, ~46 hour and ~118 minute rows, however many records there are.

All writes of one call happen in one transaction: a bad record, an exception or a
killed process leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import orjson

from bot.errors import InputError
from bot.metrics.facts import KINDS, check_any, is_old_gate_record, reclassify
from bot.metrics.ingest import Parsed, parsed_chunks
from bot.metrics.record import MAX_PROBLEMS, ExecutionMetric, RecordError, parse_time
from bot.metrics.rollup import (
    SECTIONS,
    Columns,
    Rollup,
    Section,
    Table,
    coarsen,
    decode,
    encode,
    merge,
)

DEFAULT_PATH = ".cvf/metrics.db"
MINUTE, HOUR, DAY = 60, 3600, 86400
RESOLUTIONS = (DAY, HOUR, MINUTE)
AGENT, SKILL = 0, 1  # kinds of names in the dims table

_V1 = """
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
"""
# Version 2: one packed row per (resolution, bucket) instead of one row per bucket and
# dimension value; the rows are rebuilt from the stored records (see REBUILDS).
_V2 = """
    CREATE TABLE dims (id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, name TEXT NOT NULL,
                       UNIQUE (kind, name));
    CREATE TABLE rollups (key INTEGER PRIMARY KEY, res INTEGER NOT NULL,
                          bucket INTEGER NOT NULL, main BLOB NOT NULL, agents BLOB NOT NULL,
                          skills BLOB NOT NULL, latency BLOB NOT NULL,
                          approval BLOB NOT NULL);
    DROP TABLE roll_main;
    DROP TABLE roll_agent;
    DROP TABLE roll_skill;
    DROP TABLE roll_hist;
"""
# Version 3: three record kinds. The table holds executions, routing decisions and
# approvals (``kind`` 0, 1, 2: ``bot.metrics.facts``); only executions enter the rollups.
# Decisions and approvals are few (one per pull request head and event), so they are read
# raw through a partial index that executions never touch; ``subject`` is their head sha.
# Routing-gate and review records that earlier versions stored as executions are
# re-classified (see ``SqliteStore._reclassify``) and the rollups rebuilt without them;
# histogram bins also keep their smallest and largest value from this version on.
_V3 = """
    ALTER TABLE executions RENAME TO records;
    ALTER TABLE records ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE records ADD COLUMN subject TEXT;
    CREATE INDEX records_facts ON records (kind, ts) WHERE kind != 0;
    CREATE INDEX records_subject ON records (subject) WHERE subject IS NOT NULL;
"""
# The schema only moves forward; each entry runs once, in order, in a transaction.
MIGRATIONS: tuple[tuple[int, str], ...] = ((1, _V1), (2, _V2), (3, _V3))
REBUILDS = frozenset({2, 3})  # versions after which the rollups are recomputed from the records
RECLASSIFY = 3  # the version that re-classifies earlier routing-gate records

_ROWS_OF_KEYS = ("SELECT bucket, main, agents, skills, latency, approval FROM rollups "
                 "WHERE key IN (SELECT value FROM json_each(?))")
_ROWS_BETWEEN = ("SELECT bucket, main, agents, skills, latency, approval FROM rollups "
                 "WHERE key >= ? AND key < ?")
_MAIN_BETWEEN = "SELECT bucket, main FROM rollups WHERE key >= ? AND key < ?"
# Every row of a chunk in one statement: each section's entries are one blob parameter
# and a JSON matrix says where each row's part of them is, so SQLite cuts and stores the
# rows without the GIL and without a Python call per row.
_WRITE_ROWS = ("INSERT OR REPLACE INTO rollups "
               "(key, res, bucket, main, agents, skills, latency, approval) "
               "SELECT value ->> 0, ?1, value ->> 1, "
               "ifnull(substr(?2, value ->> 2, value ->> 3), x''), "
               "ifnull(substr(?3, value ->> 4, value ->> 5), x''), "
               "ifnull(substr(?4, value ->> 6, value ->> 7), x''), "
               "ifnull(substr(?5, value ->> 8, value ->> 9), x''), "
               "ifnull(substr(?6, value ->> 10, value ->> 11), x'') "  # an empty blob reads NULL
               "FROM json_each(?7)")
# A row's key orders it by resolution, then time, so a window is one range of the
# table's own B-tree: the resolution's base plus the bucket's minute number.
_KEY_BASE = {MINUTE: 0, HOUR: 1 << 41, DAY: 2 << 41}


def _key(res: int, bucket: int) -> int:
    return _KEY_BASE[res] + bucket // MINUTE
Piece = tuple[int, int, int]  # (resolution seconds, start epoch, end epoch)


@dataclass(frozen=True)
class IngestResult:
    added: int
    duplicates: int

    @property
    def seen(self) -> int:
        return self.added + self.duplicates


class MetricsStore(Protocol):
    """What producers and readers of records may rely on.

    Three kinds of record share one sequence (``bot.metrics.facts``): executions (the
    rollups count them), decisions and approvals (read raw: ``facts``, ``facts_about``).
    ``add_many``/``ingest_lines`` take any mix; a record without ``kind`` is an execution.
    ``export_jsonl``, ``records_after`` and ``bodies_after`` give every kind."""

    def add_many(self, records: Iterable[ExecutionMetric | dict[str, Any]], *,
                 default_source: str = "api") -> IngestResult: ...
    def ingest_lines(self, lines: Iterable[str | bytes], *, where: str = "input",
                     default_source: str = "jsonl") -> IngestResult: ...
    def export_jsonl(self, out: IO[str], since: datetime | None = None,
                     until: datetime | None = None) -> int: ...
    def records_after(self, seq: int, limit: int = 100) -> list[tuple[int, dict[str, Any]]]: ...
    def bodies_after(self, seq: int) -> Iterator[tuple[int, float, str]]: ...
    def last_seq(self) -> int: ...
    def count(self, kind: str | None = None) -> int: ...
    def facts(self, kind: str, since: float | None = None,
              until: float | None = None) -> list[dict[str, Any]]: ...
    def facts_about(self, head_sha: str) -> list[dict[str, Any]]: ...
    def recent_executions(self, since: float, until: float) -> Iterator[dict[str, Any]]: ...
    def rollup(self, pieces: Sequence[Piece], *, main_only: bool = False) -> Rollup: ...
    def agents_last_seen(self, since: float) -> dict[str, float]: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def alert_issues(self) -> dict[str, int]: ...
    def remember_alert_issue(self, key: str, number: int) -> None: ...
    def forget_alert_issue(self, key: str) -> None: ...
    def close(self) -> None: ...


def open_store(path: str | Path = DEFAULT_PATH) -> MetricsStore:
    """The store at ``path``: a SQLite file (``":memory:"`` for a throwaway one), created
    on first use, or a PostgreSQL DSN (``postgresql://…``, ``bot.metrics.pgstore``)."""
    from bot.pg import is_dsn

    if is_dsn(str(path)):
        from bot.metrics.pgstore import PostgresStore

        return PostgresStore(str(path))
    return SqliteStore(path)


def record_lines(records: Iterable[ExecutionMetric | dict[str, Any]]) -> list[str]:
    """The records as JSONL lines for ``ingest_lines``, checked first so that a bad record
    is named by its position in the caller's list (``record N``), not as a line number."""
    objs: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, record in enumerate(records, start=1):
        obj = record.to_json() if isinstance(record, ExecutionMetric) else record
        problem = check_any(obj)
        if problem:
            problems.append(f"record {index}: {problem}")
            if len(problems) >= MAX_PROBLEMS:
                break
        else:
            objs.append(obj)
    if problems:
        raise RecordError(problems)
    return [json.dumps(obj, separators=(",", ":")) for obj in objs]


def folded(parsed: Parsed, agents: Any, skills: Any) -> Iterator[tuple[int, dict[Section, Table]]]:
    """A chunk's rollup entries at each resolution, minute first (``agents``/``skills``
    are the chunk's dimension ids): what every store merges into its rows."""
    ts, risk, decision, ok, latency, audit_ok, needed, granted, rejected, approve = (
        parsed.numbers)
    tables = Columns(
        minute=(ts // MINUTE).astype(np.int64) * MINUTE, ts=ts,
        risk=risk.astype(np.int64), decision=decision.astype(np.int64),
        agent=agents, skill=skills, ok=ok, latency=latency, audit_ok=audit_ok,
        needed=needed, granted=granted, rejected=rejected, approve_seconds=approve).tables()
    for res in sorted(RESOLUTIONS):
        if res != MINUTE:
            tables = {s: coarsen(s, t, res) for s, t in tables.items()}
        yield res, tables


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


class DimNames(ABC):
    """The agent and skill names behind a store's small ids, cached per connection; a
    name another process added since is found by reloading the table once."""

    DIMS_TABLE = "dims"
    db: Any

    def __init__(self) -> None:
        self._ids: dict[int, dict[str, int]] = {AGENT: {}, SKILL: {}}  # kind -> name -> id
        self._names: dict[int, str] = {}

    def _load_dims(self) -> None:
        for rid, kind, name in self.db.execute(
                f"SELECT id, kind, name FROM {self.DIMS_TABLE}"):  # noqa: S608 (a constant)
            self._ids[kind][name] = rid
            self._names[rid] = name

    def _dim_ids(self, kind: int, names: Sequence[str]) -> Any:
        """Ids of agent or skill names, giving new names the next free id."""
        if not self._names:
            self._load_dims()
        ids = self._ids[kind]
        missing = sorted(set(names).difference(ids))
        if missing:
            for rid, name in self._add_dims(kind, missing):
                ids[name] = rid
                self._names[rid] = name
        return np.fromiter(map(ids.__getitem__, names), dtype=np.int64, count=len(names))

    @abstractmethod
    def _add_dims(self, kind: int, names: list[str]) -> Iterable[tuple[int, str]]:
        """Store new names of one kind; their ids (the backend's own SQL)."""

    def _forget_dims(self) -> None:
        for ids in self._ids.values():
            ids.clear()
        self._names.clear()

    def _name_of(self, rid: int) -> str:
        if rid not in self._names:
            self._load_dims()  # another process may have added it
        return self._names.get(rid, f"#{rid}")


class SqliteStore(DimNames):
    """The embedded store. Not shared between threads: open one per thread or request."""

    def __init__(self, path: str | Path = DEFAULT_PATH):
        super().__init__()
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                      check_same_thread=False)
            # Before WAL, so it takes for a new file: bigger pages halve the bytes a bulk
            # import writes to the log and checkpoints (~1 µs a record at 4 KiB pages).
            self.db.execute("PRAGMA page_size=16384")
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
        pending = [(version, script) for version, script in MIGRATIONS if version > current]
        if not pending:
            return
        with self.transaction():  # all or nothing: a failed step leaves the old store
            for version, script in pending:
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                if version == RECLASSIFY and current > 0:
                    self._reclassify()
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                                (version, datetime.now(UTC).isoformat()))
            if current > 0 and any(version in REBUILDS for version, _ in pending):
                self._rebuild_rollups()

    def _reclassify(self) -> None:
        """Earlier versions stored the routing gate's decisions and the reviews as
        executions: make each the decision or approval it was (keeping its id and the old
        record under ``migrated_from``), adding the approvals they witnessed."""
        rows = self.db.execute("SELECT seq, body FROM records WHERE id LIKE 'routing-%' "
                               "OR id LIKE 'gh-review-%'").fetchall()
        for seq, body in rows:
            old = json.loads(body)
            if not is_old_gate_record(str(old.get("id", ""))) or "kind" in old:
                continue
            first, *derived = reclassify(old)
            self.db.execute("UPDATE records SET kind = ?, subject = ?, body = ? WHERE seq = ?",
                            (KINDS[first["kind"]], first.get("head_sha"),
                             json.dumps(first, separators=(",", ":")), seq))
            for extra in derived:
                moment = parse_time(extra["timestamp"])
                assert moment is not None  # made from a valid record
                self.db.execute("INSERT OR IGNORE INTO records (id, ts, body, kind, subject) "
                                "VALUES (?, ?, ?, ?, ?)",
                                (extra["id"], moment.timestamp(),
                                 json.dumps(extra, separators=(",", ":")),
                                 KINDS[extra["kind"]], extra.get("head_sha")))

    def _rebuild_rollups(self) -> None:
        """Fold every stored record again (the raw records are the source of truth)."""
        self.db.execute("DELETE FROM rollups")
        bodies = (body for (body,) in self.db.execute(
            "SELECT body FROM records WHERE kind = 0 ORDER BY seq"))
        for parsed in parsed_chunks(bodies, where="stored record", default_source="unknown"):
            if parsed.problems:  # only a store edited by hand could get here
                raise RecordError(parsed.problems)
            self._fold(parsed)

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
            self._forget_dims()  # ids given out in this transaction are gone with it
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # -- writing ------------------------------------------------------------------
    def add_many(self, records: Iterable[ExecutionMetric | dict[str, Any]], *,
                 default_source: str = "api") -> IngestResult:
        """Store records of any kind (executions as dataclasses or decoded JSON, decisions
        and approvals as decoded JSON) in one transaction; all or nothing."""
        return self.ingest_lines(record_lines(records), where="record",
                                 default_source=default_source)

    def ingest_lines(self, lines: Iterable[str | bytes], *, where: str = "input",
                     default_source: str = "jsonl") -> IngestResult:
        """Validate and store JSONL lines in one transaction.

        A bad line rolls everything back; the error names up to ten bad lines
        (``where:line: reason``). Records whose id is already stored are counted as
        duplicates and change nothing, so re-importing a file is harmless.
        """
        added = duplicates = 0
        problems: list[str] = []
        with self.transaction():
            chunks = parsed_chunks(lines, where=where, default_source=default_source)
            try:
                for parsed in chunks:
                    problems += parsed.problems
                    if len(problems) >= MAX_PROBLEMS:
                        break
                    if problems:
                        continue  # only looking for more problems now
                    fresh = self._write_chunk(parsed)
                    added += fresh
                    duplicates += parsed.duplicates + len(parsed) + len(parsed.facts) - fresh
            finally:
                chunks.close()  # stops the worker processes of a big input
            if problems:
                raise RecordError(problems[:MAX_PROBLEMS])
        return IngestResult(added=added, duplicates=duplicates)

    def _write_chunk(self, parsed: Parsed) -> int:
        """Insert a chunk's records that are new and fold them into the rollups; returns
        how many were new."""
        db = self.db
        facts = 0
        if parsed.facts:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO records (id, kind, ts, subject, body) "
                           "VALUES (?, ?, ?, ?, ?)", parsed.facts)
            facts = db.total_changes - before
        if not len(parsed):
            return facts
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO records (id, ts, body) VALUES (?, ?, ?)",
                       zip(parsed.ids, parsed.numbers[0].tolist(), parsed.texts, strict=True))
        fresh = db.total_changes - before
        if fresh < len(parsed):  # some ids were stored before: fold only the new ones
            # New rows take the next sequence numbers, so they are the last ``fresh`` ones.
            new_ids = {rid for (rid,) in db.execute(
                "SELECT id FROM records ORDER BY seq DESC LIMIT ?", (fresh,))}
            parsed = parsed.keep([rid in new_ids for rid in parsed.ids])
        if len(parsed):
            self._fold(parsed)
        return fresh + facts

    def _fold(self, parsed: Parsed) -> None:
        """Add the records' numbers to their minute, hour and day rows."""
        for res, tables in folded(parsed, self._dim_ids(AGENT, parsed.agents),
                                  self._dim_ids(SKILL, parsed.skills)):
            self._add_to_rows(res, tables)

    def _add_to_rows(self, res: int, new: dict[Section, Table]) -> None:
        """Merge new entries into the stored rows of the buckets they fall in.

        Only buckets up to the resolution's latest stored row can exist already, so an
        import in time order looks up one row per chunk rather than every bucket."""
        buckets = np.unique(np.concatenate([t.bucket for t in new.values()]))
        keys = buckets // MINUTE + _KEY_BASE[res]
        (latest,) = self.db.execute("SELECT MAX(key) FROM rollups WHERE key >= ? AND key < ?",
                                    (_key(res, -(2**46)), _key(res, 2**46))).fetchone()
        stored = []
        if latest is not None and keys[0] <= latest:
            stored = self.db.execute(_ROWS_OF_KEYS,
                                     (json.dumps(keys[keys <= latest].tolist()),)).fetchall()
        tables = new
        if stored:
            old = self._unpack(stored, SECTIONS)
            tables = {s: merge(s, [old[s], new[s]]) for s in SECTIONS}
        blobs, places = [], [keys, buckets]
        for section in SECTIONS:
            raw, start, length = encode(section, tables[section], buckets)
            blobs.append(raw)
            places += [start, length]
        matrix = orjson.dumps(np.column_stack(places), option=orjson.OPT_SERIALIZE_NUMPY)
        self.db.execute(_WRITE_ROWS, (res, *blobs, matrix.decode()))

    def _add_dims(self, kind: int, names: list[str]) -> Iterable[tuple[int, str]]:
        for name in names:
            self.db.execute("INSERT OR IGNORE INTO dims (kind, name) VALUES (?, ?)",
                            (kind, name))
            (rid,) = self.db.execute("SELECT id FROM dims WHERE kind = ? AND name = ?",
                                     (kind, name)).fetchone()
            yield rid, name

    # -- raw records --------------------------------------------------------------
    def export_jsonl(self, out: IO[str], since: datetime | None = None,
                     until: datetime | None = None) -> int:
        """Write stored records as JSONL, oldest first, exactly as received (plus ids)."""
        lo = since.timestamp() if since else float("-inf")
        hi = until.timestamp() if until else float("inf")
        count = 0
        cursor = self.db.execute(
            "SELECT body FROM records WHERE ts >= ? AND ts < ? ORDER BY ts, seq", (lo, hi))
        for (body,) in cursor:
            out.write(body + "\n")
            count += 1
        return count

    def records_after(self, seq: int, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """Records of every kind stored after ``seq`` (decisions and approvals carry
        ``kind``; executions may not)."""
        rows = self.db.execute("SELECT seq, body FROM records WHERE seq > ? ORDER BY seq "
                               "LIMIT ?", (seq, limit)).fetchall()
        return [(int(s), json.loads(body)) for s, body in rows]

    def bodies_after(self, seq: int) -> Iterator[tuple[int, float, str]]:
        """``(seq, timestamp, JSON text)`` of records stored after ``seq``, in that order."""
        yield from self.db.execute("SELECT seq, ts, body FROM records WHERE seq > ? "
                                   "ORDER BY seq", (seq,))

    def last_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM records").fetchone()
        return int(row[0] or 0)

    def count(self, kind: str | None = None) -> int:
        """Stored records, of one kind (``execution``, ``decision``, ``approval``) or all."""
        if kind is None:
            return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
        return int(self.db.execute("SELECT COUNT(*) FROM records WHERE kind = ?",
                                   (KINDS[kind],)).fetchone()[0])

    def facts(self, kind: str, since: float | None = None,
              until: float | None = None) -> list[dict[str, Any]]:
        """Decisions or approvals (``kind``) with a timestamp in ``[since, until)`` (epoch s),
        oldest first. They are few (one per pull request head and event), so read raw."""
        if KINDS.get(kind, 0) == 0:
            raise ValueError(f"facts are decisions or approvals, not {kind!r}")
        lo = float("-inf") if since is None else since
        hi = float("inf") if until is None else until
        # ``kind != 0`` lets SQLite use the partial index records_facts (it cannot tell that
        # a bound ``kind = ?`` excludes executions): 1 s -> 0.1 ms on a 1M-record store.
        return [json.loads(body) for (body,) in self.db.execute(
            "SELECT body FROM records WHERE kind = ? AND kind != 0 AND ts >= ? AND ts < ? "
            "ORDER BY ts, seq", (KINDS[kind], lo, hi))]

    def facts_about(self, head_sha: str) -> list[dict[str, Any]]:
        """Decisions and approvals recorded for one pull request head, oldest first."""
        return [json.loads(body) for (body,) in self.db.execute(
            "SELECT body FROM records WHERE subject = ? ORDER BY ts, seq", (head_sha,))]

    def recent_executions(self, since: float, until: float) -> Iterator[dict[str, Any]]:
        """Executions in ``[since, until)``, newest first, for drill-downs that stop early
        (a scan backwards from the newest row: cheap for recent windows)."""
        for (body,) in self.db.execute("SELECT body FROM records WHERE kind = 0 AND ts >= ? "
                                       "AND ts < ? ORDER BY seq DESC", (since, until)):
            yield json.loads(body)

    # -- rollups ------------------------------------------------------------------
    def rollup(self, pieces: Sequence[Piece], *, main_only: bool = False) -> Rollup:
        """The merged rows of the buckets covering a window (see ``pieces``).

        ``main_only`` reads the counts by risk and decision alone: enough for charts
        and totals, and far less to read when buckets hold big histograms."""
        stored: list[tuple[Any, ...]] = []
        query = _MAIN_BETWEEN if main_only else _ROWS_BETWEEN
        for res, start, end in pieces:
            stored += self.db.execute(query, (_key(res, start), _key(res, end))).fetchall()
        return Rollup(self._unpack(stored, SECTIONS[:1] if main_only else SECTIONS),
                      self._name_of)

    @staticmethod
    def _unpack(stored: list[tuple[Any, ...]],
                sections: Sequence[Section]) -> dict[Section, Table]:
        """Tables of stored ``(bucket, blob of each of sections...)`` rows."""
        buckets = [row[0] for row in stored]
        return {section: decode(section, [row[i] for row in stored], buckets)
                for i, section in enumerate(sections, start=1)}

    def agents_last_seen(self, since: float) -> dict[str, float]:
        """Agents with any execution since ``since`` (epoch s) and their latest timestamp."""
        start = int(since // DAY * DAY)
        agents = self.rollup([(DAY, start, 2**62)]).agents()
        return {agent: last for agent, (_n, _err, _lat, last) in agents.items()}

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
