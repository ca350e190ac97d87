"""The bot under gunicorn with its production config, and the clients that attack it.

Shared by tests/test_serving_e2e.py (pass/fail) and bench/attacks.py (figures): gunicorn
runs ``bot.app:create_app()`` with ``bot/gunicorn_conf.py`` on 127.0.0.1 port 0 against
a GitHub simulator; ``Attackers`` holds slow clients (one header line per second) and
open metrics streams; ``ping`` times a signed ping on a fresh connection.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.github.signature import sign

ROOT = Path(__file__).resolve().parent.parent
SECRET = "serving-webhook-secret"
API_TOKEN = "serving-api-token"
TOKEN = "ghs_serving_token"
_LISTENING = re.compile(rb"Listening at: http://127\.0\.0\.1:(\d+)")


class Gunicorn:
    """``with Gunicorn(api_url) as bot: bot.port`` — the README's production command."""

    def __init__(self, api_url: str, *, worker_class: str | None = None,
                 workers: int = 2, threads: int | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="cvf-gunicorn-"))
        self.log_path = self.workdir / "gunicorn.log"
        self.env = {**os.environ, "GITHUB_API_URL": api_url, "GITHUB_TOKEN": TOKEN,
                    "CVF_WEBHOOK_SECRET": SECRET, "CVF_API_TOKEN": API_TOKEN,
                    "PYTHONPATH": str(ROOT)}
        for name in ("CVF_APP_ID", "CVF_PRIVATE_KEY", "CVF_CONFIG"):
            self.env.pop(name, None)
        self.command = [sys.executable, "-m", "gunicorn", "-c", "python:bot.gunicorn_conf",
                        "--workers", str(workers), "--bind", "127.0.0.1:0"]
        if worker_class:
            self.command += ["--worker-class", worker_class]
        if threads:
            self.command += ["--threads", str(threads)]
        self.command.append("bot.app:create_app()")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        # The metrics store exists before the first deliveries race to create it.
        subprocess.run([sys.executable, "-c", "from bot.metrics.store import open_store; "
                        "open_store('.cvf/metrics.db').close()"], cwd=self.workdir,
                       env=self.env, check=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command, cwd=self.workdir, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        if not self.port:
            raise RuntimeError("gunicorn did not answer /healthz within 60 s")
        return self

    def _healthy(self) -> bool:
        if not self.port:
            found = _LISTENING.search(self.log_path.read_bytes())
            if not found:
                return False
            self.port = int(found.group(1))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")


def post(port: int, event: str, body: bytes, *, timeout: float = 120,
         conn: http.client.HTTPConnection | None = None) -> int:
    """One signed delivery; the status (599 when the connection failed)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/webhook", body=body, headers={
            "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()),
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)})
        answer = conn.getresponse()
        answer.read()
        return answer.status
    except (OSError, http.client.HTTPException):
        conn.close()
        return 599
    finally:
        if own:
            conn.close()


def ping(port: int, timeout: float = 30) -> float:
    """Seconds for a signed ``ping`` on a fresh connection; ``inf`` if not answered in time."""
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    started = time.perf_counter()
    status = post(port, "ping", body, timeout=timeout)
    took = time.perf_counter() - started
    if status == 599:
        return float("inf")
    if status != 200:
        raise RuntimeError(f"ping answered {status}")
    return took


def burst(port: int, work: Iterable[tuple[str, bytes]], concurrency: int = 16) -> float:
    """Deliveries per second for ``work``, ``concurrency`` connections kept alive."""
    items = list(work)
    local = threading.local()

    def send(item: tuple[str, bytes]) -> int:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        status = post(port, *item, conn=local.conn)
        if status == 599:
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            status = post(port, *item, conn=local.conn)
        return status

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = list(pool.map(send, items))
    elapsed = time.perf_counter() - started
    failed = [s for s in statuses if s >= 500]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(items)} deliveries failed: {failed[:5]}")
    return len(items) / elapsed


class Attackers:
    """``slow`` clients sending one header line per second (never finishing), and
    ``streams`` open ``GET /api/metrics/stream`` connections kept drained — all from one
    thread with a selector, so the attack itself costs the machine little."""

    def __init__(self, port: int, *, slow: int = 64, streams: int = 32) -> None:
        self.selector = selectors.DefaultSelector()
        self.slow: list[socket.socket] = []
        self.streams: list[socket.socket] = []
        self.stop = threading.Event()
        for _ in range(streams):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /api/metrics/stream HTTP/1.1\r\nHost: attacker\r\n"
                         b"Authorization: Bearer " + API_TOKEN.encode() + b"\r\n\r\n")
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.streams.append(sock)
        for _ in range(slow):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /webhook HTTP/1.1\r\n")
            self.slow.append(sock)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        next_line = time.monotonic() + 1.0
        counter = 0
        while not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(key.fileobj)
            if time.monotonic() >= next_line:
                next_line += 1.0
                counter += 1
                for sock in self.slow:
                    with contextlib.suppress(OSError):  # the server may have hung up
                        sock.sendall(f"X-Slow-{counter}: {counter}\r\n".encode())

    def open_streams(self) -> int:
        return len(self.selector.get_map())

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.slow + self.streams:
            sock.close()


def comment_deliveries(count: int, numbers: list[int]) -> list[tuple[str, bytes]]:
    """Signed-ready ``issue_comment`` deliveries spread over ``numbers`` (real payload)."""
    payload = json.loads((ROOT / "tests" / "fixtures" / "payloads" / "issue_comment"
                          / "created.payload.json").read_text("utf-8"))
    out = []
    for i in range(count):
        payload["issue"]["number"] = numbers[i % len(numbers)]
        payload["issue"].pop("pull_request", None)
        payload["comment"]["id"] = 10**7 + i
        payload["comment"]["body"] = f"Looks good to me ({i})."
        out.append(("issue_comment", json.dumps(payload).encode()))
    return out
