"""Scale-out: 3 gunicorn replicas and 2 queue workers on one PostgreSQL, the soak's mix.

    python bench/scaleout.py                    # 20,000 deliveries
    python bench/scaleout.py -n 2000            # a shorter run

Starts a throw-away PostgreSQL cluster (tests/pgcluster.py, fsync on), the GitHub
simulator with bench/soak.py's repository (plain PRs/issues and RFC pull requests), three
gunicorn replicas with ``CVF_QUEUE_DSN`` set (each: 1 worker x 8 threads) and two
``cvf worker`` processes. Sends bench/soak.py's mix (people's comments on RFCs are
written to the simulator first, then delivered) round-robin over the replicas; a share
of the deliveries is sent a second time, same delivery id, to another replica. During
the run one worker is killed with SIGKILL twice (a fresh one is started each time).

Deliveries go out on a fixed schedule (``--rate``, default 100 a second, far above what
hundreds of repositories send), as GitHub sends them when events happen: a closed loop
of N clients would only measure N / throughput, whatever the server does. The workers
may fall behind that rate; the queue holds the rest, and the drain time is printed.

Prints the webhook answer p50/p99 (target p99 < 50 ms), deliveries processed, lost (0),
run again after a kill, processed twice with an effect (duplicate bot comments: 0), and
whether every RFC's final ledger equals the one-by-one replay. Exit 1 on a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
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
sys.path.insert(0, str(ROOT / "bench"))

import load  # noqa: E402
import soak  # noqa: E402

from tests.pgcluster import Cluster  # noqa: E402

REPLICAS = 3
WORKERS = 2
# Workers and the simulated GitHub (remote, in real life) run at a lower CPU priority than
# the webhook replicas, as the README advises for a machine that hosts both: an answer
# has a deadline, a queued delivery does not.
NICE = 10


def simulator_process(*args: Any) -> None:
    os.nice(NICE)
    soak.simulator_process(*args)


def start_worker(env: dict[str, str], workdir: Path, n: int) -> subprocess.Popen[bytes]:
    log = open(workdir / f"worker-{n}.log", "wb")  # noqa: SIM115 (lives as long as the worker)
    return subprocess.Popen(
        ["nice", "-n", str(NICE), sys.executable, "-m", "bot", "worker", "--concurrency", "16",
         "--no-tick", "--heartbeat", "1", "--stalled-after", "5", "--name", f"bench-{n}"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def _status_of(body: bytes) -> str:
    try:
        return str(json.loads(body).get("status", "?"))
    except ValueError:
        return "?"


def counts(dsn: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT status, count(*) FROM cvf_deliveries GROUP BY status")
        found = {str(k): int(v) for k, v in rows.fetchall()}
        again = conn.execute("SELECT count(*) FROM cvf_deliveries WHERE attempts > 1"
                             ).fetchone()
    found["run_again"] = int(again[0]) if again else 0
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=20000)
    parser.add_argument("-c", "--concurrency", type=int, default=64,
                        help="sending threads (enough that none waits behind a slow answer)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="deliveries sent per second, on a fixed schedule (0: as fast "
                             "as the threads go)")
    parser.add_argument("--pool", type=int, default=50)
    parser.add_argument("--rfcs", type=int, default=100)
    parser.add_argument("--rfc-share", type=float, default=0.4)
    parser.add_argument("--twice", type=float, default=0.05,
                        help="share of deliveries sent again to another replica")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra PostgreSQL setting (e.g. log_min_duration_statement=20)"
                             "; the server log is kept with the others")
    parser.add_argument("--drain-timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the processes we started

    rng = random.Random(args.seed)
    n_rfc = int(args.requests * args.rfc_share)
    work: list[tuple[Any, ...]] = [("plain", event, body) for event, body in
                                   load.deliveries(args.requests - n_rfc, args.pool, args.seed)]
    for _ in range(n_rfc):
        k = rng.randrange(args.rfcs)
        author, body = soak.rfc_comment(rng, k + 1)
        work.append(("rfc", soak.RFC_BASE + k, author, body))
    rng.shuffle(work)
    twice = {i for i in range(len(work)) if rng.random() < args.twice}
    template = json.loads(load._payload_file("issue_comment", "created").read_text("utf-8"))

    workdir = Path(tempfile.mkdtemp(prefix="cvf-scaleout-"))
    cluster = Cluster(settings={"fsync": "on", "synchronous_commit": "on",
                                "full_page_writes": "on",
                                **dict(item.split("=", 1) for item in args.pg)}).start()
    dsn = cluster.new_database("cvf")
    ctx = mp.get_context("spawn")
    port_out, commands = ctx.Queue(), ctx.Queue()
    sim = ctx.Process(target=simulator_process,
                      args=(args.pool, args.rfcs, port_out, commands), daemon=True)
    sim.start()
    sim_port = port_out.get(timeout=60)
    env = {**os.environ, "GITHUB_API_URL": f"http://127.0.0.1:{sim_port}",
           "GITHUB_TOKEN": load.TOKEN, "CVF_WEBHOOK_SECRET": load.SECRET,
           "CVF_QUEUE_DSN": dsn, "CVF_METRICS_DSN": dsn, "PYTHONPATH": str(ROOT)}
    env.pop("CVF_APP_ID", None)
    replicas: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    workers: list[subprocess.Popen[bytes]] = []
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    kills = 0
    try:
        for r in range(REPLICAS):
            port = load.free_port()
            with open(workdir / f"replica-{r}.log", "wb") as log:
                replicas.append(subprocess.Popen(load.gunicorn_command(port, 1, 8), cwd=workdir,
                                                 env=env, stdout=log, stderr=subprocess.STDOUT))
            ports.append(port)
        for r, port in enumerate(ports):
            load.wait_healthy(port, replicas[r])
        workers = [start_worker(env, workdir, n) for n in range(WORKERS)]
        clients = [load.Client(port) for port in ports]
        commenter = soak.Commenter(sim_port)
        lock = threading.Lock()
        sent = 0
        delivery_ids: set[str] = set()
        kill_at = {len(work) // 3, 2 * len(work) // 3}

        outcomes: Counter[str] = Counter()
        again: Counter[str] = Counter()
        timed = False
        warm = load.deliveries(10 * REPLICAS, args.pool, args.seed + 1)
        for i, (event, body) in enumerate(warm):  # each replica opens its pool and schema
            clients[i % REPLICAS].post(event, body)
            if _status_of(clients[i % REPLICAS].last_body) == "queued":
                delivery_ids.add(json.loads(clients[i % REPLICAS].last_body)["delivery"])
        timed = True

        lags: list[float] = []

        def send(index_item: tuple[int, tuple[Any, ...]]) -> None:
            nonlocal sent, kills
            index, item = index_item
            if args.rate:  # open loop: GitHub sends when events happen, not when we answer
                due = run_started + index / args.rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                else:
                    with lock:
                        lags.append(-wait)
            if item[0] == "rfc":
                _, number, author, text = item
                comment_id = commenter.comment(number, author, text)
                event, body = "issue_comment", soak.comment_payload(
                    template, number, comment_id, author, text)
            else:
                _, event, body = item
            delivery = str(uuid.uuid4())
            targets = [index % REPLICAS]
            if index in twice:
                targets.append((index + 1) % REPLICAS)
            answers = []
            for target in targets:
                started = time.perf_counter()
                status = clients[target].post(event, body, delivery)
                took = time.perf_counter() - started
                answers.append(_status_of(clients[target].last_body))
                with lock:
                    if timed:
                        latencies.append(took)
                    statuses[status] += 1
            with lock:
                outcomes[answers[0]] += 1
                if answers[0] == "queued":
                    delivery_ids.add(delivery)
                    again.update(a for a in answers[1:])
                sent += 1
                if sent in kill_at:  # kill -9 a worker mid-run, start a fresh one
                    victim = workers.pop(0)
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    kills += 1
                    workers.append(start_worker(env, workdir, WORKERS + kills))
                    print(f"  ... killed worker {victim.pid} with SIGKILL after {sent} "
                          f"deliveries", flush=True)
                if sent % 2000 == 0:
                    spent = time.perf_counter() - run_started
                    print(f"  ... {sent} sent in {spent:.0f}s ({sent / spent:.0f}/s); "
                          f"queue {counts(dsn)}", flush=True)

        run_started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(send, enumerate(work)))
        sending = time.perf_counter() - run_started
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            now = counts(dsn)
            if not any(now.get(s, 0) for s in ("queued", "running", "retrying")):
                break
            time.sleep(1)
        drained = time.perf_counter() - run_started
        final = counts(dsn)
        commands.put("stats")
        after = port_out.get(timeout=60)
        commands.put("rfcs")
        snapshot = port_out.get(timeout=120)
    finally:
        for proc in [*workers, *replicas]:
            proc.terminate()
        for proc in [*workers, *replicas]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        commands.put("stop")
        sim.join(timeout=10)
        with contextlib.suppress(OSError):
            shutil.copy(cluster.folder / "log", workdir / "postgresql.log")
        cluster.stop()

    bot_login = "cvf-governance[bot]"
    expected = soak.reference_ledgers(snapshot, bot_login)
    differ = []
    for number, comments in snapshot.items():
        status = [c["body"] for c in comments if c["user"] == bot_login
                  and c["body"].startswith("<!-- cvf:rfc-status -->")]
        got = soak.ledger_rows(status[0] if len(status) == 1 else "")
        if got != expected[number] or len(status) > 1 or (not status and expected[number]):
            differ.append(number)
            (workdir / f"differ-{number}.json").write_text(json.dumps(
                {"bot": got, "one_by_one": expected[number], "status_comments": len(status),
                 "comments": comments}, indent=1, default=str))
    latencies.sort()
    n = len(latencies)
    p50, p99 = 1000 * statistics.median(latencies), 1000 * latencies[min(n - 1, int(n * .99))]
    unique = len(delivery_ids)
    processed = final.get("done", 0)
    lost = unique - processed - final.get("dead", 0)
    print(f"deliveries        {unique} queued ({len(twice)} of them also sent to a second "
          f"replica: {n} POSTs) over {REPLICAS} gunicorn replicas, {WORKERS} workers, "
          f"concurrency {args.concurrency}; {n_rfc} comments on {args.rfcs} RFCs")
    print(f"webhook answer    p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {1000 * latencies[-1]:.0f}"
          f" ms (target p99 < 50 ms)")
    print(f"status codes      {dict(sorted(statuses.items()))}; first answers "
          f"{dict(outcomes)} (no handler / ignored are answered at once, never queued); "
          f"second sends {dict(again)}")
    pace = (f"at {args.rate:.0f}/s on a fixed schedule ({len(lags)} sends started late, "
            f"by at most {1000 * max(lags, default=0):.0f} ms)" if args.rate
            else "as fast as the threads go")
    print(f"sent in           {sending:.0f}s ({unique / sending:.0f}/s, {pace}); all processed "
          f"after {drained:.0f}s ({processed / drained:.0f}/s)")
    print(f"workers killed    {kills} (SIGKILL); deliveries run again after a kill or failure: "
          f"{final.get('run_again', 0)}")
    print(f"processed         {processed}; dead {final.get('dead', 0)}; lost {lost}")
    print(f"double effects    {after['duplicates']} duplicate bot comments"
          + (f" e.g. {after['duplicate_markers']}" if after["duplicates"] else ""))
    print(f"simulator errors  {after['errors']}")
    print(f"RFC ledgers       {len(snapshot) - len(differ)}/{len(snapshot)} equal to the "
          f"one-by-one replay" + (f"; differ: {differ}" if differ else ""))
    print(f"logs              {workdir}")
    failed = (lost or after["duplicates"] or differ or p99 >= 50 or final.get("dead", 0)
              or any(s >= 500 for s in statuses))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
