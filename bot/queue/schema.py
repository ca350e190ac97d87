"""procrastinate's tables in our database: created once, their version recorded, upgraded
in order when a newer procrastinate is installed.

procrastinate ships its newest schema (``schema.sql``) and one SQL file per change
(``sql/migrations/xx.yy.zz_ab_{pre|post}_what.sql``: ``xx.yy.zz`` the version that brought
it, ``ab`` its serial) and leaves it to the application to know which files ran. We record
that in ``cvf_schema`` (``bot.pg``) under two components: ``procrastinate``, the last file
applied, as the number ``xxyyzzab``; and ``procrastinate_post``, the last *post* file
applied. Files always run in name order, one transaction each, so a failing file leaves
the level at the one before it.

procrastinate's documented contract (its "Migrate the Procrastinate schema" how-to): a
``pre`` file is applied before the code of its version is deployed and keeps the previous
version working; a ``post`` file is applied once no process runs the previous version any
more (files named without pre/post, before v3, are post files). Hence, when a worker or a
webhook replica starts (under the schema advisory lock, so replicas starting together
apply each file once):

- the ``pre`` files at the head of what is pending are applied: safe while replicas of the
  previous version still run;
- ``post`` files left at the tail wait for ``cvf deliveries migrate``, to be run once every
  replica runs the new version (the new code works without them; a warning says so);
- a ``post`` file before a ``pre`` one (an upgrade across procrastinate versions that each
  brought migrations) cannot be applied with older replicas running: the start is refused
  with the procedure (stop every replica and worker, ``cvf deliveries migrate``, start).

A schema created by the bot before it recorded the version (the first queue releases,
which required procrastinate 3.5 or later) has the schema of procrastinate 3.5 to 3.10
(no migration in between); it is recognised and recorded as such. Any other unrecorded
schema is refused with the way to declare its version (``--from``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import CvfError
from bot.pg import SCHEMA_LOCK

log = logging.getLogger("cvf.worker")

LEVEL = "procrastinate"
POST_LEVEL = "procrastinate_post"
# The newest procrastinate released when the bot started recording its schema level: an
# unrecorded schema made by the bot is the one of this version (see the module docstring).
LEGACY_VERSION = (3, 10, 0)
MIGRATE_COMMAND = "cvf deliveries migrate"
_NAME = re.compile(r"^(\d{2})\.(\d{2})\.(\d{2})_(\d{2})_(.+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One of procrastinate's migration files."""

    name: str
    path: Path

    @property
    def _parts(self) -> tuple[int, int, int, int, str]:
        found = _NAME.match(self.name)
        assert found, self.name
        x, y, z, serial, rest = found.groups()
        return int(x), int(y), int(z), int(serial), rest

    @property
    def version(self) -> tuple[int, int, int]:
        return self._parts[:3]

    @property
    def key(self) -> int:
        x, y, z, serial, _ = self._parts
        return ((x * 100 + y) * 100 + z) * 100 + serial

    @property
    def post(self) -> bool:
        """procrastinate's rule: a file not named ``pre`` is a post file."""
        return not self._parts[4].startswith("pre_")

    @property
    def phase(self) -> str:
        return "post" if self.post else "pre"

    def sql(self) -> str:
        return self.path.read_text("utf-8")


def label(key: int) -> str:
    """``3040050`` -> ``"03.04.00_50"``, as the files are named."""
    x, y, z, serial = key // 1_000_000, key // 10_000 % 100, key // 100 % 100, key % 100
    return f"{x:02d}.{y:02d}.{z:02d}_{serial:02d}"


def installed_version() -> str:
    from importlib.metadata import version

    return version("procrastinate")


def shipped(folder: Path | None = None) -> list[Migration]:
    """The migration files of the installed procrastinate (or of ``folder``), in order."""
    if folder is None:
        from procrastinate.schema import SchemaManager

        folder = Path(SchemaManager.get_migrations_path())
    found = [Migration(p.name, p) for p in folder.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda m: m.key)


def parse_version(text: str) -> tuple[int, int, int]:
    """``"3.4.0"`` or ``"03.04.00"`` -> ``(3, 4, 0)``."""
    parts = text.strip().split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CvfError(f'expected a procrastinate version like "3.4.0", got "{text}"',
                       hint="name the procrastinate version that created the schema "
                            "(`pip show procrastinate` where it was created)")
    return int(parts[0]), int(parts[1]), int(parts[2])


@dataclass
class Upgrade:
    """What a run found and did."""

    version: str  # the installed procrastinate
    before: int | None  # level found (None: no procrastinate schema was there)
    after: int = 0
    created: bool = False
    recorded: str = ""  # how an unrecorded level was established
    applied: list[Migration] = field(default_factory=list)
    waiting: list[Migration] = field(default_factory=list)  # post files left for later


@contextlib.contextmanager
def schema_lock(store: Any) -> Iterator[Any]:
    """A connection holding the schema advisory lock (a session lock: each file commits
    on its own, and a dead process's lock dies with its connection)."""
    with store.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def ensure_schema(store: Any, migrations: Sequence[Migration] | None = None) -> Upgrade:
    """Our tables and procrastinate's, created or upgraded at start-up as the module
    docstring says; raises ``CvfError`` when the upgrade needs the replicas stopped."""
    store.migrate()
    files = list(migrations) if migrations is not None else shipped()
    with schema_lock(store) as conn:
        run = _current(conn, files)
        if run.before is None or run.created:
            return run
        pending = [m for m in files if m.key > run.before]
        head: list[Migration] = []
        for migration in pending:
            if migration.post:
                break
            head.append(migration)
        rest = pending[len(head):]
        blocked = next((m for m in rest if not m.post), None)
        if blocked is not None:
            first_post = next(m for m in rest if m.post)
            raise CvfError(
                f"procrastinate {run.version} needs its schema upgraded from "
                f"{label(run.before)} to {label(files[-1].key)}, and post-migration "
                f"{first_post.name} comes before pre-migration {blocked.name}: post-migrations "
                "are only safe once no replica runs the older version",
                hint=f"stop every webhook replica and `cvf worker`, run `{MIGRATE_COMMAND}` "
                     "once, then start them again")
        _apply(conn, head, run)
        run.waiting = rest
    if run.applied:
        log.info(json.dumps({"schema": "procrastinate", "applied": [m.name for m in run.applied],
                             "level": label(run.after)}))
    if run.waiting:
        log.warning(json.dumps({
            "schema": "procrastinate", "waiting": [m.name for m in run.waiting],
            "hint": f"once every webhook replica and worker runs procrastinate {run.version}, "
                    f"run `{MIGRATE_COMMAND}`"}))
    return run


def migrate(store: Any, migrations: Sequence[Migration] | None = None, *,
            start_from: tuple[int, int, int] | None = None, dry_run: bool = False) -> Upgrade:
    """Apply every pending file, pre and post, in order (``cvf deliveries migrate``).

    ``start_from`` declares which procrastinate version made the schema, for a schema
    whose level the bot never recorded; ``dry_run`` only says what would run."""
    store.migrate()
    files = list(migrations) if migrations is not None else shipped()
    # A dry run records nothing either (not even a declared or recognised level).
    with schema_lock(store) as conn, (conn.transaction(force_rollback=True) if dry_run
                                      else contextlib.nullcontext()):
        if start_from is not None:
            _declare(conn, files, start_from)
        run = _current(conn, files, create=not dry_run)
        if run.before is None or run.created:
            return run
        pending = [m for m in files if m.key > run.before]
        if dry_run:
            run.waiting = pending
            return run
        _apply(conn, pending, run)
    return run


def _current(conn: Any, files: Sequence[Migration], *, create: bool = True) -> Upgrade:
    """The recorded level (establishing it when missing), after checking that this bot's
    procrastinate is not older than the schema."""
    run = Upgrade(version=installed_version(), before=None)
    newest = files[-1].key if files else 0
    levels = _levels(conn)
    if LEVEL not in levels:
        if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:
            if create:
                _create(conn, files)
                run.created = True
                run.after = newest
            return run
        levels = _legacy(conn, files)
        run.recorded = (f"an unrecorded schema made by an earlier bot, recognised as "
                        f"procrastinate {'.'.join(map(str, LEGACY_VERSION))}'s")
    run.before = run.after = levels[LEVEL]
    post = levels.get(POST_LEVEL, 0)
    if run.before > newest and post > newest:
        raise CvfError(
            f"the procrastinate schema in PostgreSQL is at {label(run.before)}, newer than "
            f"this machine's procrastinate {run.version} knows ({label(newest)}), with "
            f"post-migration {label(post)} applied, which older code may not run with",
            hint="install the bot (and procrastinate) version the other replicas run here")
    return run


def _levels(conn: Any) -> dict[str, int]:
    rows = conn.execute("SELECT component, version FROM cvf_schema WHERE component IN (%s, %s)",
                        (LEVEL, POST_LEVEL)).fetchall()
    return {str(name): int(version) for name, version in rows}


def _record(conn: Any, level: int, post: int | None) -> None:
    values = [(LEVEL, level)] + ([(POST_LEVEL, post)] if post is not None else [])
    for component, version in values:
        conn.execute("INSERT INTO cvf_schema (component, version) VALUES (%s, %s) "
                     "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                     (component, version))


def _up_to(files: Sequence[Migration], version: tuple[int, int, int]) -> tuple[int, int]:
    """(level, post level) of a schema made by procrastinate ``version``."""
    older = [m for m in files if m.version <= version]
    return (older[-1].key if older else 0,
            max((m.key for m in older if m.post), default=0))


def _create(conn: Any, files: Sequence[Migration]) -> None:
    from procrastinate.schema import SchemaManager

    newest = files[-1].key if files else 0
    with conn.transaction():
        conn.execute(SchemaManager.get_schema())
        _record(conn, newest, max((m.key for m in files if m.post), default=0))


def _legacy(conn: Any, files: Sequence[Migration]) -> dict[str, int]:
    """Record the level of a schema the bot made before it recorded levels."""
    # 3.4's pre-migration added retry_job_v2, its post one taught the status trigger the
    # "retried" event; 3.2's post one dropped defer_job_v1.
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'procrastinate_retry_job_v2') "
        "AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'procrastinate_defer_job_v1') "
        "AND EXISTS (SELECT 1 FROM pg_proc WHERE prosrc LIKE '%retried%' AND proname = "
        "'procrastinate_trigger_function_status_events_update_v1')").fetchone()
    if not (row and row[0]):
        raise CvfError(
            "the database has procrastinate tables but no record of the procrastinate "
            "version that made them, and they are not those of procrastinate 3.5 to 3.10 "
            "(which earlier releases of the bot created)",
            hint=f"run `{MIGRATE_COMMAND} --from X.Y.Z` naming the procrastinate version "
                 "that created the schema; it applies the migrations after it")
    level, post = _up_to(files, LEGACY_VERSION)
    with conn.transaction():
        _record(conn, level, post)
    return {LEVEL: level, POST_LEVEL: post}


def _declare(conn: Any, files: Sequence[Migration], version: tuple[int, int, int]) -> None:
    if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is None:
        raise CvfError("--from names the version of an existing procrastinate schema, and "
                       "this database has none",
                       hint=f"drop --from: `{MIGRATE_COMMAND}` creates the schema")
    level, post = _up_to(files, version)
    with conn.transaction():
        _record(conn, level, post)


def _apply(conn: Any, pending: Sequence[Migration], run: Upgrade) -> None:
    """Each file and its level in one transaction, in order."""
    import psycopg

    for migration in pending:
        try:
            with conn.transaction():
                conn.execute(migration.sql())
                _record(conn, migration.key, migration.key if migration.post else None)
        except psycopg.Error as exc:
            raise CvfError(
                f"procrastinate migration {migration.name} failed: {exc}".strip(),
                hint=f"nothing of that file was applied; the schema stays at "
                     f"{label(run.after)}. If the schema already had it (made by another "
                     f"procrastinate version), declare that version with "
                     f"`{MIGRATE_COMMAND} --from X.Y.Z`") from None
        run.applied.append(migration)
        run.after = migration.key
