"""The metrics store on PostgreSQL: the same interface, rows and rollups as SQLite,
shared by every replica.

Same layout as the SQLite store (``bot.metrics.store``): raw records (three kinds, one
sequence) plus one packed rollup row per (resolution, bucket), so a report reads the same
few rows and gives the same numbers. What changes is how many processes write:

- A batch's ids are looked up, then its new records go in with one ``COPY`` and only
  those are folded into the rollups: a record stored twice (a retry, two replicas, a
  re-import) counts once, and the unique id would refuse a second copy anyway.
- Each write call is one transaction holding a transaction-level advisory lock, so two
  writers never merge into the same rollup row at once (no lost update) and sequence
  numbers are committed in order (the live stream never skips a record). A failed or
  killed writer leaves nothing behind.
- The schema is versioned (``cvf_schema``, component ``metrics``) and migrated under
  the shared schema lock by whichever process opens the store first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import numpy as np

from bot.metrics.facts import KINDS
from bot.metrics.ingest import Parsed, parsed_chunks
from bot.metrics.record import MAX_PROBLEMS, ExecutionMetric, RecordError
from bot.metrics.rollup import SECTIONS, Rollup, Section, Table, encode, merge
from bot.metrics.store import (
    _KEY_BASE,
    AGENT,
    DAY,
    MINUTE,
    SKILL,
    DimNames,
    IngestResult,
    Piece,
    SqliteStore,
    _key,
    folded,
    record_lines,
)
from bot.pg import apply_migrations, connect_error, redact

COMPONENT = "metrics"
WRITE_LOCK = 0x43564610  # advisory lock key: one metrics writer at a time
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE metrics_records (
        seq bigserial PRIMARY KEY,
        id text NOT NULL UNIQUE,
        kind smallint NOT NULL DEFAULT 0,
        ts double precision NOT NULL,
        subject text,
        body text NOT NULL
    );
    CREATE INDEX metrics_records_facts ON metrics_records (kind, ts) WHERE kind <> 0;
    CREATE INDEX metrics_records_subject ON metrics_records (subject)
        WHERE subject IS NOT NULL;
    CREATE TABLE metrics_dims (id serial PRIMARY KEY, kind smallint NOT NULL,
                               name text NOT NULL, UNIQUE (kind, name));
    CREATE TABLE metrics_rollups (key bigint PRIMARY KEY, res integer NOT NULL,
                                  bucket bigint NOT NULL, main bytea NOT NULL,
                                  agents bytea NOT NULL, skills bytea NOT NULL,
                                  latency bytea NOT NULL, approval bytea NOT NULL);
    CREATE TABLE metrics_meta (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE metrics_alert_issues (key text PRIMARY KEY, number integer NOT NULL,
                                       opened_at text NOT NULL);
    """,
    # Ids and head shas compare byte by byte: under the database's default collation
    # (often en_US.UTF-8 or C.UTF-8) every index comparison calls strcoll, which made
    # the unique id index most of a bulk load's server time. A minute's rollup row
    # (~2 KB, already packed) is stored as it is instead of being compressed on every
    # upsert for a few hundred bytes.
    """
    ALTER TABLE metrics_records ALTER COLUMN id TYPE text COLLATE "C",
                                ALTER COLUMN subject TYPE text COLLATE "C";
    ALTER TABLE metrics_rollups SET (toast_tuple_target = 8160);
    """,
)
_COLUMNS = "bucket, main, agents, skills, latency, approval"
_COPY_RECORDS = "COPY metrics_records (id, kind, ts, subject, body) FROM STDIN"
_UPSERT_ROLLUPS = (
    "INSERT INTO metrics_rollups (key, res, bucket, main, agents, skills, latency, approval) "
    "SELECT * FROM unnest(%b::bigint[], %b::integer[], %b::bigint[], %b::bytea[], "
    "%b::bytea[], %b::bytea[], %b::bytea[], %b::bytea[]) "
    "ON CONFLICT (key) DO UPDATE SET main = EXCLUDED.main, agents = EXCLUDED.agents, "
    "skills = EXCLUDED.skills, latency = EXCLUDED.latency, approval = EXCLUDED.approval")
_migrated: set[str] = set()  # DSNs this process has brought up to date


class PostgresStore(DimNames):
    """``MetricsStore`` on one PostgreSQL connection (open one per thread or request)."""

    DIMS_TABLE = "metrics_dims"

    def __init__(self, dsn: str) -> None:
        import psycopg

        super().__init__()
        self.dsn = dsn
        self.where = redact(dsn)
        try:
            self.db = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            raise connect_error(dsn, exc) from None
        if dsn not in _migrated:
            apply_migrations(self.db, COMPONENT, MIGRATIONS)
            _migrated.add(dsn)

    def schema_version(self) -> int:
        row = self.db.execute("SELECT version FROM cvf_schema WHERE component = %s",
                              (COMPONENT,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self.db.close()

    # -- writing ------------------------------------------------------------------
    def add_many(self, records: Iterable[ExecutionMetric | dict[str, Any]], *,
                 default_source: str = "api") -> IngestResult:
        """Store records of any kind in one transaction; all or nothing."""
        return self.ingest_lines(record_lines(records), where="record",
                                 default_source=default_source)

    def ingest_lines(self, lines: Iterable[str | bytes], *, where: str = "input",
                     default_source: str = "jsonl") -> IngestResult:
        """Validate and store JSONL lines in one transaction (see ``SqliteStore``)."""
        added = duplicates = 0
        problems: list[str] = []
        try:
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                chunks = parsed_chunks(lines, where=where, default_source=default_source,
                                       prepare=with_copy_rows)
                try:
                    for parsed in chunks:
                        problems += parsed.problems
                        if len(problems) >= MAX_PROBLEMS:
                            break
                        if problems:
                            continue
                        fresh = self._write_chunk(parsed)
                        added += fresh
                        duplicates += (parsed.duplicates + len(parsed) + len(parsed.facts)
                                       - fresh)
                finally:
                    chunks.close()
                if problems:
                    raise RecordError(problems[:MAX_PROBLEMS])
        except BaseException:
            self._forget_dims()  # ids given out in the rolled-back transaction are gone
            raise
        return IngestResult(added=added, duplicates=duplicates)

    def _write_chunk(self, parsed: Parsed) -> int:
        """COPY a chunk's new records in, fold the new executions; returns how many were
        new. Runs under the write lock, so the ids found stored cannot change meanwhile."""
        fresh = self._write_facts(parsed.facts)
        if not len(parsed):
            return fresh
        if not parsed.rows:
            parsed = with_copy_rows(parsed)
        levels = self._load(parsed)
        if levels is None:  # some are stored already: load only the others
            stored = self._stored([*parsed.ids])
            parsed = parsed.keep([rid not in stored for rid in parsed.ids])
            levels = self._load(parsed) if len(parsed) else []
        for res, tables in levels or []:
            self._add_to_rows(res, tables)
        return fresh + len(parsed)

    def _load(self, parsed: Parsed) -> list[tuple[int, dict[Section, Table]]] | None:
        """Load executions that are new as far as anyone knows (a first import, fresh API
        records) with one ``COPY`` and no lookup, folding them for the rollups while
        PostgreSQL stores them (the rows go out from psycopg's writer thread). None,
        leaving nothing behind, if an id is stored already (a re-import, a retried
        request): the caller sorts them out."""
        import psycopg
        from psycopg.copy import QueuedLibpqWriter

        agents = self._dim_ids(AGENT, parsed.agents)
        skills = self._dim_ids(SKILL, parsed.skills)
        try:
            with self.db.transaction(), self.db.cursor() as cur, cur.copy(
                    _COPY_RECORDS, writer=QueuedLibpqWriter(cur)) as copy:
                copy.write(parsed.rows)
                return list(folded(parsed, agents, skills))
        except psycopg.errors.UniqueViolation:
            return None

    def _stored(self, ids: list[str]) -> set[str]:
        return {rid for (rid,) in self.db.execute(
            "SELECT id FROM metrics_records WHERE id = ANY(%s)", (ids,))}

    def _write_facts(self, facts: list[tuple[str, int, float, str | None, str]]) -> int:
        """Decisions and approvals (few per delivery): looked up, then copied row by row."""
        if not facts:
            return 0
        stored = self._stored([fact[0] for fact in facts])
        fresh = 0
        with self.db.cursor() as cur, cur.copy(_COPY_RECORDS) as copy:
            for fact in facts:
                if fact[0] not in stored:
                    copy.write_row(fact)
                    fresh += 1
        return fresh

    def _add_to_rows(self, res: int, new: dict[Section, Table]) -> None:
        """Merge new entries into the stored rows of their buckets, then upsert them."""
        buckets = np.unique(np.concatenate([t.bucket for t in new.values()]))
        keys = buckets // MINUTE + _KEY_BASE[res]
        stored = self.db.execute(f"SELECT {_COLUMNS} FROM metrics_rollups "  # noqa: S608
                                 "WHERE key = ANY(%s) ORDER BY key",
                                 (keys.tolist(),)).fetchall()
        tables = new
        if stored:
            old = SqliteStore._unpack([tuple(bytes(v) if isinstance(v, memoryview) else v
                                             for v in row) for row in stored], SECTIONS)
            tables = {s: merge(s, [old[s], new[s]]) for s in SECTIONS}
        parts = []
        for section in SECTIONS:
            raw, start, length = encode(section, tables[section], buckets)
            parts.append([raw[b - 1:b - 1 + n] for b, n in zip(start.tolist(), length.tolist(),
                                                                 strict=True)])
        # One statement with the rows as binary arrays: no per-row COPY formatting, no
        # hex-escaped bytea, no scratch table to empty (a third of the ingest time before).
        self.db.execute(_UPSERT_ROLLUPS, (keys.tolist(), [res] * len(keys), buckets.tolist(),
                                          *parts))

    def _add_dims(self, kind: int, names: list[str]) -> Iterable[tuple[int, str]]:
        with self.db.cursor() as cur:
            cur.executemany("INSERT INTO metrics_dims (kind, name) VALUES (%s, %s) "
                            "ON CONFLICT DO NOTHING", [(kind, n) for n in names])
        return list(self.db.execute(
            "SELECT id, name FROM metrics_dims WHERE kind = %s AND name = ANY(%s)",
            (kind, names)))

    # -- raw records --------------------------------------------------------------
    def export_jsonl(self, out: IO[str], since: datetime | None = None,
                     until: datetime | None = None) -> int:
        lo = since.timestamp() if since else float("-inf")
        hi = until.timestamp() if until else float("inf")
        count = 0
        with self.db.cursor() as cur:
            for (body,) in cur.stream("SELECT body FROM metrics_records WHERE ts >= %s "
                                      "AND ts < %s ORDER BY ts, seq", (lo, hi)):
                out.write(body + "\n")
                count += 1
        return count

    def records_after(self, seq: int, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        rows = self.db.execute("SELECT seq, body FROM metrics_records WHERE seq > %s "
                               "ORDER BY seq LIMIT %s", (seq, limit)).fetchall()
        return [(int(s), json.loads(body)) for s, body in rows]

    def bodies_after(self, seq: int) -> Iterator[tuple[int, float, str]]:
        with self.db.cursor() as cur:
            yield from cur.stream("SELECT seq, ts, body FROM metrics_records WHERE seq > %s "
                                  "ORDER BY seq", (seq,))

    def last_seq(self) -> int:
        row = self.db.execute("SELECT MAX(seq) FROM metrics_records").fetchone()
        return int(row[0] or 0) if row else 0

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            row = self.db.execute("SELECT COUNT(*) FROM metrics_records").fetchone()
        else:
            row = self.db.execute("SELECT COUNT(*) FROM metrics_records WHERE kind = %s",
                                  (KINDS[kind],)).fetchone()
        return int(row[0]) if row else 0

    def facts(self, kind: str, since: float | None = None,
              until: float | None = None) -> list[dict[str, Any]]:
        if KINDS.get(kind, 0) == 0:
            raise ValueError(f"facts are decisions or approvals, not {kind!r}")
        lo = float("-inf") if since is None else since
        hi = float("inf") if until is None else until
        return [json.loads(body) for (body,) in self.db.execute(
            "SELECT body FROM metrics_records WHERE kind = %s AND ts >= %s AND ts < %s "
            "ORDER BY ts, seq", (KINDS[kind], lo, hi))]

    def facts_about(self, head_sha: str) -> list[dict[str, Any]]:
        return [json.loads(body) for (body,) in self.db.execute(
            "SELECT body FROM metrics_records WHERE subject = %s ORDER BY ts, seq",
            (head_sha,))]

    def recent_executions(self, since: float, until: float) -> Iterator[dict[str, Any]]:
        with self.db.cursor() as cur:
            for (body,) in cur.stream("SELECT body FROM metrics_records WHERE kind = 0 "
                                      "AND ts >= %s AND ts < %s ORDER BY seq DESC",
                                      (since, until)):
                yield json.loads(body)

    # -- rollups ------------------------------------------------------------------
    def rollup(self, pieces: Sequence[Piece], *, main_only: bool = False) -> Rollup:
        columns = "bucket, main" if main_only else _COLUMNS
        stored: list[tuple[Any, ...]] = []
        for res, start, end in pieces:
            stored += [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                       for row in self.db.execute(
                           f"SELECT {columns} FROM metrics_rollups "  # noqa: S608
                           "WHERE key >= %s AND key < %s ORDER BY key",
                           (_key(res, start), _key(res, end)))]
        return Rollup(SqliteStore._unpack(stored, SECTIONS[:1] if main_only else SECTIONS),
                      self._name_of)

    def agents_last_seen(self, since: float) -> dict[str, float]:
        start = int(since // DAY * DAY)
        agents = self.rollup([(DAY, start, 2**62)]).agents()
        return {agent: last for agent, (_n, _err, _lat, last) in agents.items()}

    # -- small state --------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM metrics_meta WHERE key = %s",
                              (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO metrics_meta VALUES (%s, %s) ON CONFLICT (key) "
                        "DO UPDATE SET value = EXCLUDED.value", (key, value))

    def alert_issues(self) -> dict[str, int]:
        return {k: int(n) for k, n in self.db.execute(
            "SELECT key, number FROM metrics_alert_issues")}

    def remember_alert_issue(self, key: str, number: int) -> None:
        self.db.execute("INSERT INTO metrics_alert_issues VALUES (%s, %s, %s) "
                        "ON CONFLICT (key) DO UPDATE SET number = EXCLUDED.number",
                        (key, number, datetime.now(UTC).isoformat()))

    def forget_alert_issue(self, key: str) -> None:
        self.db.execute("DELETE FROM metrics_alert_issues WHERE key = %s", (key,))


def with_copy_rows(parsed: Parsed) -> Parsed:
    """The chunk's executions as ``COPY`` text rows (id, kind 0, time, no subject, JSON).

    Made in the parser process (``parsed_chunks(prepare=...)``): formatting a million
    rows is seconds of Python, which the writing process would otherwise spend while
    PostgreSQL waits for data.
    """
    stamps = parsed.numbers[0].tolist() if len(parsed) else []
    ids, texts = _copy_escaped(parsed.ids), _copy_escaped(parsed.texts)
    parsed.rows = "".join([f"{rid}\t0\t{ts!r}\t\\N\t{text}\n"
                           for rid, ts, text in zip(ids, stamps, texts, strict=True)]).encode()
    parsed.texts = []  # in the rows now; not carried back from the parser process twice
    return parsed


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_escaped(values: list[str]) -> list[str]:
    """Values as ``COPY`` text fields; JSON lines and ids almost never need escaping, so
    one scan of them all decides whether any value is rewritten."""
    joined = "".join(values)
    if not any(c in joined for c in "\\\t\n\r"):
        return values
    return [v.translate(_COPY_ESCAPES) for v in values]


def migrate_store(source: Any, target: Any, *, batch: int = 200_000) -> IngestResult:
    """Copy every record (any kind, in sequence order), the meta values and the open alert
    issues from one store to another; the target folds its own rollups. Records already in
    the target are skipped, so an interrupted migration can simply be run again."""
    added = duplicates = 0
    seq = 0
    while True:
        bodies = [(s, body) for s, _ts, body in _take(source.bodies_after(seq), batch)]
        if not bodies:
            break
        seq = bodies[-1][0]
        result = target.ingest_lines((body for _, body in bodies), where="source record",
                                     default_source="unknown")
        added += result.added
        duplicates += result.duplicates
    for key, number in source.alert_issues().items():
        target.remember_alert_issue(key, number)
    for key in _meta_keys(source):
        value = source.get_meta(key)
        if value is not None:
            target.set_meta(key, value)
    return IngestResult(added=added, duplicates=duplicates)


def _take(rows: Iterator[tuple[int, float, str]], limit: int) -> list[tuple[int, float, str]]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) >= limit:
            break
    close = getattr(rows, "close", None)
    if callable(close):
        close()
    return out


def _meta_keys(store: Any) -> list[str]:
    db = getattr(store, "db", None)
    if db is None:
        return []
    table = "metrics_meta" if isinstance(store, PostgresStore) else "meta"
    return [str(k) for (k,) in db.execute(f"SELECT key FROM {table}")]  # noqa: S608

