"""Run the GitHub simulator by hand, or measure it.

    python -m tests.ghsim serve [--port 8765]      # a seeded demo repository, until Ctrl-C
    python -m tests.ghsim bench [--requests 20000] [--concurrency 32]

``serve`` prints the base URL and a curl line to try; point the bot at it with
``GITHUB_API_URL``. ``bench`` drives the simulator from a separate process (so client and
server do not share a GIL) with a read-heavy mix like one webhook delivery's (pull,
comments, reactions, then a sticky-comment edit) and prints requests/s, p50/p99 latency,
errors and the server's memory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = "octo-org/governance"


def seed_demo(sim: Any, pulls: int = 3) -> None:
    repo = sim.repo(REPO)
    repo.put_file("README.md", "# Governance\n")
    repo.put_file(".github/cvf.yml", "")
    sim.set_team("octo-org", "rfc-committee", ["alice", "bob"], pending=["carol"])
    repo.set_permission("alice", "maintain")
    for n in range(pulls):
        pr = repo.add_pull(title=f"RFC {n + 1}: an idea", author="alice", labels=["rfc"],
                           files={f"rfcs/{n + 1:04d}-idea.md": f"# Idea {n + 1}\n"})
        comment = repo.add_comment(pr.number, "bob", "Looks good")
        repo.add_reaction("bob", "+1", number=pr.number)
        repo.add_reaction("alice", "heart", comment_id=comment.id)


def serve(port: int) -> None:
    from tests.ghsim import GitHubSimulator

    with GitHubSimulator(port=port) as sim:
        seed_demo(sim)
        print(f"GitHub simulator at {sim.base_url} (repository {REPO}); Ctrl-C stops it",
              flush=True)
        print(f"  curl -s {sim.base_url}/repos/{REPO}/pulls/1 | head")
        print(f"  GITHUB_API_URL={sim.base_url} GITHUB_TOKEN=any cvf handle ...", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"\n{len(sim.requests)} requests served")


def _server_process(port_out: Any, done: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.ghsim import GitHubSimulator

    sim = GitHubSimulator(log_limit=10_000).start()
    seed_demo(sim, pulls=50)
    port_out.put((sim.port, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    done.wait()
    port_out.put((len(sim.errors), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    sim.stop()


def bench(total: int, concurrency: int) -> None:
    import requests

    ports: Any = multiprocessing.Queue()
    done = multiprocessing.Event()
    server = multiprocessing.Process(target=_server_process, args=(ports, done), daemon=True)
    server.start()
    port, rss_start = ports.get(timeout=30)
    base = f"http://127.0.0.1:{port}/repos/{REPO}"
    local = threading.local()
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal errors
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = "token bench"
        number = i % 50 + 1
        kind = i % 5
        start = time.perf_counter()
        try:
            if kind == 0:
                answer = session.get(f"{base}/pulls/{number}", timeout=30)
            elif kind == 1:
                answer = session.get(f"{base}/issues/{number}/comments",
                                     params={"per_page": 100}, timeout=30)
            elif kind == 2:
                answer = session.get(f"{base}/issues/{number}/reactions", timeout=30)
            elif kind == 3:
                answer = session.get(f"{base}/contents/README.md", timeout=30)
            else:
                answer = session.post(f"{base}/issues/{number}/comments",
                                      json={"body": f"status {i}"}, timeout=30)
            failed = answer.status_code >= 400
        except requests.RequestException:
            failed = True
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            errors += failed

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(total)))
    wall = time.perf_counter() - started
    done.set()
    internal, rss_end = ports.get(timeout=30)
    server.join(timeout=10)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"ghsim: {total} requests at concurrency {concurrency} in {wall:.1f} s "
          f"= {total / wall:.0f} req/s; p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms; errors {errors}, simulator bugs {internal}; "
          f"server max RSS {rss_start / 1024:.0f} -> {rss_end / 1024:.0f} MiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.ghsim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run a seeded simulator until Ctrl-C")
    serve_cmd.add_argument("--port", type=int, default=8765)
    bench_cmd = sub.add_parser("bench", help="measure the simulator's throughput")
    bench_cmd.add_argument("--requests", type=int, default=20_000)
    bench_cmd.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port)
    else:
        bench(args.requests, args.concurrency)


if __name__ == "__main__":
    main()
