"""A throw-away PostgreSQL cluster for tests and benches: ``initdb`` + ``pg_ctl`` in a
temporary folder, reached over a unix socket in that folder (no TCP port at all).

PostgreSQL refuses to run as root, so when we are root the folder is given to an
unprivileged account (``nobody``) and the server commands run as it via ``runuser``.
``available()`` says why a cluster cannot start here (no binaries), for ``pytest.skip``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def binaries() -> Path | None:
    """pg_ctl's folder: on PATH, or Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    return versions[-1].parent if versions else None


def available() -> str | None:
    """None when a cluster can start; otherwise the reason it cannot."""
    if binaries() is None:
        return ("no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql: "
                "install the Debian package `postgresql` (.ci/run does)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as an unprivileged user"
    return None


class Cluster:
    """``with Cluster() as pg: pg.dsn`` — a fresh server, stopped and deleted at exit."""

    def __init__(self, *, settings: dict[str, str] | None = None, user: str = "nobody") -> None:
        reason = available()
        if reason:
            raise RuntimeError(reason)
        self.bin = binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="cvf-pg-"))
        self.data = self.folder / "data"
        self.user = user
        self.settings = {"fsync": "off", "synchronous_commit": "off",
                         "full_page_writes": "off", "max_connections": "200",
                         "shared_buffers": "128MB", **(settings or {})}
        self.dsn = f"postgresql://cvf@/postgres?host={self.folder}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): "
                               f"{done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> Cluster:
        if os.geteuid() == 0:
            shutil.chown(self.folder, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "cvf", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        options = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w",
                  "-t", "60", "-o",
                  f"-k {self.folder} -c listen_addresses='' {options}", "start")
        return self

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_database(self, name: str) -> str:
        """A fresh database in this cluster; returns its DSN."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://cvf@/{name}?host={self.folder}"

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(check: object, timeout: float = 30.0, step: float = 0.05) -> bool:
    """Poll ``check()`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False
