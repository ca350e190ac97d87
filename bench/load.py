"""Load: N signed webhook deliveries at concurrency C against the bot under gunicorn.

    python bench/load.py                      # 1000 deliveries, concurrency 16
    python bench/load.py -n 20000 -c 32 --workers 4 --threads 8

The GitHub simulator (tests/ghsim) runs in its own process, seeded with the repository the
real payloads name (tests/fixtures/payloads); gunicorn runs ``bot.app:create_app()`` with
every handler in HANDLER_MODULES, pointed at the simulator through GITHUB_API_URL. Each
delivery is a real payload with its PR/issue number spread over a pool, a fresh delivery
id and a valid signature. Prints events/s, p50/p99 latency, 5xx and other errors, GitHub
API calls and writes per event, duplicate bot comments, and gunicorn's memory (RSS of the
master and workers, summed and each) after warm-up and at the end. gunicorn
starts with the production settings of bot/gunicorn_conf.py (the README's command).
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import multiprocessing as mp
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.github.signature import sign  # noqa: E402

PAYLOADS = ROOT / "tests" / "fixtures" / "payloads"
SECRET = "bench-webhook-secret"
TOKEN = "ghs_bench_token"
REPO = "Codertocat/Hello-World"
# (event, payload file, weight): mostly what a busy governance repo sees.
MIX = [
    ("pull_request", "opened", 2), ("pull_request", "synchronize", 3),
    ("pull_request", "labeled", 1), ("issue_comment", "created", 4),
    ("pull_request_review", "submitted", 2), ("issues", "opened", 1),
    ("push", "payload", 1), ("workflow_run", "completed", 1),
]
COMMENTS = ["Looks good to me.", "/rfc vote approve", "+1, ship it", "/rfc concern scope",
            "I have a question about the rollout plan."]


def simulator_process(pool: int, port_out: Any, commands: Any) -> None:
    """Own process, so the simulator's Python does not share a GIL with the load client."""
    sys.path.insert(0, str(ROOT))
    from tests.ghsim import GitHubSimulator

    sim = GitHubSimulator(log_limit=None).start()
    repo = sim.repo(REPO, default_branch="master")
    seed_pool(repo, pool)
    port_out.put(sim.port)
    while True:
        command = commands.get()
        if command == "stats":
            port_out.put(simulator_stats(sim, repo))
        elif command == "stop":
            sim.stop()
            return


def seed_pool(repo: Any, pool: int) -> None:
    """The plain issues and pull requests the delivery mix points at."""
    for n in range(1, pool + 1):
        repo.add_issue(2 * n - 1, title=f"Issue {n}", author="Codertocat")
        repo.add_pull(2 * n, title=f"Change {n}", author="Codertocat",
                      files={f"docs/page-{n}.md": f"page {n}\n"}, head_ref=f"change-{n}")


def simulator_stats(sim: Any, repo: Any) -> dict[str, Any]:
    """Requests and writes the simulator saw, and bot comments posted more than once
    (same first line on the same issue)."""
    requests = sim.requests
    bodies: Counter[tuple[int, str]] = Counter()
    for number in list(repo.issues):
        for comment in repo.comments_on(number):
            if comment.user.endswith("[bot]"):
                first = comment.body.splitlines()[0] if comment.body else ""
                bodies[(number, first)] += 1
    return {"requests": len(requests),
            "writes": sum(1 for r in requests if r.is_write),
            "errors": len(sim.errors),
            "duplicates": sum(c - 1 for c in bodies.values() if c > 1),
            "duplicate_markers": sorted({first[:60] for (_, first), c in bodies.items()
                                         if c > 1})[:5]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _payload_file(event: str, name: str) -> Path:
    named = PAYLOADS / event / f"{name}.payload.json"
    return named if named.is_file() else PAYLOADS / event / f"{name}.json"


def deliveries(count: int, pool: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    loaded = {(e, n): json.loads(_payload_file(e, n).read_text("utf-8")) for e, n, _ in MIX}
    weights = [w for _, _, w in MIX]
    out = []
    for _ in range(count):
        event, name, _ = rng.choices(MIX, weights)[0]
        payload = copy.deepcopy(loaded[(event, name)])
        k = rng.randint(1, pool)
        if "pull_request" in payload and isinstance(payload["pull_request"], dict):
            payload["number"] = 2 * k
            payload["pull_request"]["number"] = 2 * k
        if "issue" in payload:
            on_pull = rng.random() < 0.5
            payload["issue"]["number"] = 2 * k if on_pull else 2 * k - 1
            if on_pull:
                payload["issue"]["pull_request"] = {"url": ""}
            if "comment" in payload:
                payload["comment"]["body"] = rng.choice(COMMENTS)
                payload["comment"]["id"] = rng.randint(10**6, 10**9)
        out.append((event, json.dumps(payload).encode()))
    return out


def rss_by_process(root_pid: int) -> dict[int, int]:
    """RSS in KiB of ``root_pid`` and each of its children (gunicorn master, workers)."""
    pids = {root_pid}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == root_pid:
                pids.add(int(entry.name))
    out = {}
    for pid in sorted(pids):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[pid] = int(line.split()[1])
        except OSError:
            pass
    return out


def rss_kib(root_pid: int) -> int:
    """RSS of ``root_pid`` and its children (gunicorn master + workers), summed."""
    return sum(rss_by_process(root_pid).values())


def rss_breakdown(root_pid: int, by_pid: dict[int, int]) -> str:
    """``master 26.1 + workers 70.2, 71.0 MiB``: which process a change is in."""
    workers = ", ".join(f"{kib / 1024:.1f}" for pid, kib in by_pid.items() if pid != root_pid)
    return f"master {by_pid.get(root_pid, 0) / 1024:.1f} + workers {workers} MiB"


def gunicorn_command(port: int, workers: int, threads: int,
                     config: str = "python:bot.gunicorn_conf") -> list[str]:
    """The README's production command (bot/gunicorn_conf.py) on a local port."""
    return [sys.executable, "-m", "gunicorn", "-c", config,
            "--workers", str(workers), "--threads", str(threads),
            "--bind", f"127.0.0.1:{port}", "bot.app:create_app()"]


class Client(threading.local):
    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.last_body = b""

    def post(self, event: str, body: bytes, delivery: str | None = None) -> int:
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
                   "Content-Type": "application/json",
                   "X-Hub-Signature-256": sign(body, SECRET)}
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request("POST", "/webhook", body=body, headers=headers)
                answer = self.conn.getresponse()
                self.last_body = answer.read()
                return answer.status
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    return 599
        return 599


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited at start; see its log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer /healthz in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=1000)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pool", type=int, default=50, help="PRs and issues to spread over")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=300,
                        help="deliveries sent first, at the same concurrency, before the "
                             "start memory is read (threads and caches fill up first)")
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    port_out, commands = ctx.Queue(), ctx.Queue()
    sim = ctx.Process(target=simulator_process, args=(args.pool, port_out, commands),
                      daemon=True)
    sim.start()
    sim_port = port_out.get(timeout=60)

    bot_port = free_port()
    workdir = tempfile.mkdtemp(prefix="cvf-bench-")
    log_path = Path(workdir) / "gunicorn.log"
    env = {**os.environ, "GITHUB_API_URL": f"http://127.0.0.1:{sim_port}",
           "GITHUB_TOKEN": TOKEN, "CVF_WEBHOOK_SECRET": SECRET,
           "PYTHONPATH": str(ROOT)}
    env.pop("CVF_APP_ID", None)
    with open(log_path, "wb") as log:
        bot = subprocess.Popen(gunicorn_command(bot_port, args.workers, args.threads),
                               cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(bot_port, bot)
        work = deliveries(args.requests, args.pool, args.seed)
        warm = Client(bot_port)
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(lambda item: warm.post(*item),
                          deliveries(args.warmup, args.pool, args.seed + 1)))
        commands.put("stats")
        before = port_out.get(timeout=60)
        rss_start_by = rss_by_process(bot.pid)
        rss_start = sum(rss_start_by.values())

        client = Client(bot_port)
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def send(item: tuple[str, bytes]) -> None:
            started = time.perf_counter()
            status = client.post(*item)
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                statuses[status] += 1

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(send, work))
        elapsed = time.perf_counter() - started
        rss_end_by = rss_by_process(bot.pid)
        rss_end = sum(rss_end_by.values())
        commands.put("stats")
        after = port_out.get(timeout=60)
    finally:
        bot.terminate()
        bot.wait(timeout=30)
        commands.put("stop")
        sim.join(timeout=10)

    latencies.sort()
    n = len(latencies)
    server_errors = sum(c for s, c in statuses.items() if s >= 500)
    api_calls = after["requests"] - before["requests"]
    writes = after["writes"] - before["writes"]
    print(f"deliveries        {n} at concurrency {args.concurrency} "
          f"(gunicorn {args.workers} workers x {args.threads} threads)")
    print(f"throughput        {n / elapsed:.1f} events/s over {elapsed:.1f}s")
    print(f"latency           p50 {1000 * statistics.median(latencies):.0f} ms, "
          f"p99 {1000 * latencies[min(n - 1, int(n * 0.99))]:.0f} ms, "
          f"max {1000 * latencies[-1]:.0f} ms")
    print(f"status codes      {dict(sorted(statuses.items()))}")
    print(f"errors (5xx)      {server_errors}")
    print(f"GitHub API calls  {api_calls / n:.2f} per event ({api_calls} total), "
          f"writes {writes / n:.2f} per event")
    print(f"duplicate bot comments (same marker, same thread): {after['duplicates']}")
    print(f"simulator errors  {after['errors']}")
    growth = 100.0 * (rss_end - rss_start) / rss_start if rss_start else 0.0
    print(f"bot memory (RSS)  start {rss_start / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB "
          f"({growth:+.1f}%); start {rss_breakdown(bot.pid, rss_start_by)}, "
          f"end {rss_breakdown(bot.pid, rss_end_by)}")
    print(f"gunicorn log      {log_path}")
    return 1 if server_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
