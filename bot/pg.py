"""PostgreSQL plumbing shared by the delivery queue and the metrics store: versioned
schema migrations under an advisory lock, and error messages that never show a password."""

from __future__ import annotations

from typing import Any

from bot.errors import CvfError

SCHEMA_LOCK = 0x43564601  # advisory lock key held while any component migrates


def is_dsn(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


def connect_error(dsn: str, exc: Exception) -> CvfError:
    return CvfError(f"cannot reach PostgreSQL at {redact(dsn)}: {exc}".strip(),
                    hint="check the DSN (postgresql://user:password@host:port/db) and that "
                         "the server is running")


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "the configured DSN"
    if "password" in parts:
        parts["password"] = "***"  # noqa: S105 (a mask, not a password)
    return make_conninfo("", **{k: v for k, v in parts.items() if v is not None})


def apply_migrations(conn: Any, component: str, migrations: tuple[str, ...]) -> int:
    """Bring ``component``'s tables to the newest version; returns the version now.

    Runs under a transaction-scoped advisory lock, so replicas starting together apply
    each migration once. Shared by the queue and the metrics store.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS cvf_schema "
                     "(component text PRIMARY KEY, version integer NOT NULL)")
        row = conn.execute("SELECT version FROM cvf_schema WHERE component = %s",
                           (component,)).fetchone()
        version = row[0] if row else 0
        if version > len(migrations):
            raise CvfError(f"the {component} schema in PostgreSQL is version {version}, newer "
                           f"than this bot knows ({len(migrations)})",
                           hint="upgrade the bot on this machine")
        for number, statement in enumerate(migrations[version:], start=version + 1):
            conn.execute(statement)
            conn.execute("INSERT INTO cvf_schema (component, version) VALUES (%s, %s) "
                         "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                         (component, number))
        return len(migrations)
