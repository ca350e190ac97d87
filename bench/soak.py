"""Soak: many signed deliveries, RFC votes and commands among them, against gunicorn.

    python bench/soak.py                          # 20,000 deliveries at concurrency 32
    python bench/soak.py -n 2000 -c 16            # a shorter run

Reuses bench/load.py's machinery (payload mix, signing client, gunicorn start with the
production settings of bot/gunicorn_conf.py, RSS). On
top of load.py's mix, a share of the deliveries are comments on RFC pull requests: each
is first written to the simulated GitHub over HTTP as the person who says it (a vote, a
lifecycle command, a concern, chatter), then delivered as a signed ``issue_comment``
webhook, as GitHub does. At the end every RFC's ledger (kept by the bot in its status
comment) is compared with the ledger that the same comments give when handled one by one
against the in-memory GitHub: the same commands, answered the same way, in the same order.

Prints events/s, p50/p99, 5xx, GitHub API calls per event, duplicate bot comments, the
bot's RSS (master and workers, summed and each) after a warm-up at full concurrency and
at the end, and the RFC comparison. Exit status 1 when a target is missed
(any 5xx, memory growth of 10% or more, an RFC whose final state differs).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import load  # noqa: E402  (bench/load.py: the shared load machinery)

from tests.rfc_samples import rfc_text  # noqa: E402

REPO = load.REPO
RFC_BASE = 1001  # RFC pull request numbers start here, above load.py's pool
COMMITTEE = ("alice", "bob", "carol")
OTHERS = ("dave", "erin", "mallory")
REPO_CONFIG = """\
rfc:
  committee:
    users: [alice, bob, carol]
  vote_rules:
    default: {quorum: 2, threshold: 0.6667}
"""



def soak_rfc(n: int) -> str:
    return rfc_text(n, title=f"Soak proposal {n}", author=f"writer{n}")


def rfc_path(n: int) -> str:
    return f"rfcs/{n:04d}-soak-proposal-{n}.md"


def token_for(login: str) -> str:
    return f"ghu_soak_{login}"


def rfc_comment(rng: random.Random, n: int) -> tuple[str, str]:
    """(author, body): what people write on an RFC pull request, refusals included."""
    writer = f"writer{n}"
    roll = rng.random()
    if roll < 0.30:
        voter = rng.choice(COMMITTEE + OTHERS)
        option = rng.choices(["approve", "reject", "request-changes", "abstain", "retract"],
                             [6, 1, 1, 1, 1])[0]
        return voter, f"/vote {option} reasons of my own"
    if roll < 0.42:
        return writer, rng.choice(["/rfc open", "Updated the design.\n\n/rfc open",
                                   "/rfc withdraw" if rng.random() < 0.05 else "/rfc open"])
    if roll < 0.62:
        who = rng.choice(COMMITTEE)
        command = rng.choices(["review", "accept", "reject", "postpone", "extend 3d",
                               "open", "concern naming", "resolve naming"],
                              [4, 4, 1, 1, 1, 1, 2, 2])[0]
        return who, f"/rfc {command}"
    if roll < 0.72:
        return rng.choice(OTHERS), rng.choice(["/rfc accept", "/rfc concern scope",
                                               "/rfc frobnicate", "/vote maybe"])
    return rng.choice(COMMITTEE + OTHERS + (writer,)), rng.choice(
        ["Looks good.", "What about > quoted /rfc accept", "```\n/rfc reject\n```",
         "@everyone please read", "<!-- cvf:rfc-status --> not the bot"])


def simulator_process(pool: int, rfcs: int, port_out: Any, commands: Any) -> None:
    """load.py's seeded repository plus ``rfcs`` RFC pull requests and a repo config."""
    sys.path.insert(0, str(ROOT))
    from tests.ghsim import GitHubSimulator

    sim = GitHubSimulator(log_limit=None).start()
    repo = sim.repo(REPO, default_branch="master")
    repo.put_file(".github/cvf.yml", REPO_CONFIG)
    load.seed_pool(repo, pool)
    for k in range(rfcs):
        n = k + 1
        repo.add_pull(RFC_BASE + k, title=f"RFC: soak proposal {n}", author=f"writer{n}",
                      files={rfc_path(n): soak_rfc(n)}, head_ref=f"rfc-{n}")
    for login in (*COMMITTEE, *OTHERS, *(f"writer{k + 1}" for k in range(rfcs))):
        sim.set_token(token_for(login), login)
    port_out.put(sim.port)
    while True:
        command = commands.get()
        if command == "stats":
            port_out.put(load.simulator_stats(sim, repo))
        elif command == "rfcs":
            out = {}
            for k in range(rfcs):
                out[RFC_BASE + k] = [
                    {"id": c.id, "user": c.user, "body": c.body,
                     "at": c.created_at.astimezone(UTC).replace(microsecond=0).isoformat()}
                    for c in sorted(repo.comments_on(RFC_BASE + k), key=lambda c: c.id)]
            port_out.put(out)
        elif command == "stop":
            sim.stop()
            return


class Commenter(threading.local):
    """Writes a comment to the simulated GitHub as a person, like GitHub's web UI would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def comment(self, number: int, login: str, body: str) -> int:
        data = json.dumps({"body": body}).encode()
        for attempt in range(3):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request("POST", f"/repos/{REPO}/issues/{number}/comments", body=data,
                                  headers={"Authorization": f"token {token_for(login)}",
                                           "Content-Type": "application/json"})
                answer = self.conn.getresponse()
                created = json.loads(answer.read())
                return int(created["id"])
            except (ConnectionError, http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")


def comment_payload(template: dict[str, Any], number: int, comment_id: int, login: str,
                    body: str) -> bytes:
    payload = json.loads(json.dumps(template))
    payload["action"] = "created"
    payload["issue"]["number"] = number
    payload["issue"]["pull_request"] = {"url": ""}
    payload["comment"].update(id=comment_id, body=body)
    payload["comment"]["user"]["login"] = login
    payload["sender"]["login"] = login
    return json.dumps(payload).encode()


def reference_ledgers(snapshot: dict[int, list[dict[str, Any]]],
                      bot_login: str) -> dict[int, list[tuple[str, ...]]]:
    """Each RFC's ledger when its people's comments are handled one at a time, in order."""
    from bot.config import parse_config
    from bot.events import Event
    from bot.handlers import rfc as handler
    from tests.fake_github import FakeGitHub

    config = parse_config(REPO_CONFIG)
    out: dict[int, list[tuple[str, ...]]] = {}
    for number, comments in snapshot.items():
        n = number - RFC_BASE + 1
        gh = FakeGitHub(REPO, bot_login=bot_login, default_branch="master",
                        now=datetime(2020, 1, 1, tzinfo=UTC))
        gh.add_pull(number, title=f"RFC: soak proposal {n}", author=f"writer{n}",
                    files={rfc_path(n): soak_rfc(n)}, head_ref=f"rfc-{n}")
        for c in comments:
            if c["user"] == bot_login:
                continue
            at = datetime.fromisoformat(c["at"])
            made = gh.add_comment(number, c["user"], c["body"], created_at=at)
            event = Event(name="issue_comment", now=at, config=config, payload={
                "action": "created", "repository": {"full_name": REPO},
                "issue": {"number": number, "pull_request": {}},
                "comment": {"id": made.id}, "sender": {"login": c["user"]}})
            handler.on_issue_comment(event, gh)
        status = [c.body for c in gh.bot_comments(number)
                  if c.body.startswith(handler.STATUS_MARKER)]
        out[number] = ledger_rows(status[0] if status else "")
    return out


def ledger_rows(status_body: str) -> list[tuple[str, ...]]:
    from bot.rfc.record import Ledger

    ledger = Ledger.decode(status_body) if status_body else Ledger()
    return [(e.command, e.by, e.argument, e.outcome, e.from_state, e.to_state)
            for e in ledger.entries]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=20000)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--pool", type=int, default=50, help="plain PRs and issues")
    parser.add_argument("--rfcs", type=int, default=100, help="RFC pull requests")
    parser.add_argument("--rfc-share", type=float, default=0.4,
                        help="share of deliveries that are comments on RFC pull requests")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=500,
                        help="plain deliveries sent first, at the same concurrency, before "
                             "the start memory is read: every request thread has started "
                             "and the delivery-id caches are full")
    parser.add_argument("--trace", metavar="DIR", type=Path,
                        help="trace each worker's Python allocations (tracemalloc) from the "
                             "end of the warm-up to exit and print what grew (slow: "
                             "diagnosis only; see bench/gunicorn_trace.py)")
    parser.add_argument("--max-seconds", type=float, default=3600,
                        help="stop sending after this long and report what was sent")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    n_rfc = int(args.requests * args.rfc_share)
    plain = load.deliveries(args.requests - n_rfc, args.pool, args.seed)
    # Each RFC item: ("rfc", number, author, body); written, then delivered, in mix order.
    work: list[tuple[str, Any, ...]] = [("plain", event, body) for event, body in plain]
    for _ in range(n_rfc):
        k = rng.randrange(args.rfcs)
        author, body = rfc_comment(rng, k + 1)
        work.append(("rfc", RFC_BASE + k, author, body))
    rng.shuffle(work)
    template = json.loads(load._payload_file("issue_comment", "created").read_text("utf-8"))

    ctx = mp.get_context("spawn")
    port_out, commands = ctx.Queue(), ctx.Queue()
    sim = ctx.Process(target=simulator_process,
                      args=(args.pool, args.rfcs, port_out, commands), daemon=True)
    sim.start()
    sim_port = port_out.get(timeout=60)

    bot_port = load.free_port()
    workdir = tempfile.mkdtemp(prefix="cvf-soak-")
    log_path = Path(workdir) / "gunicorn.log"
    env = {**os.environ, "GITHUB_API_URL": f"http://127.0.0.1:{sim_port}",
           "GITHUB_TOKEN": load.TOKEN, "CVF_WEBHOOK_SECRET": load.SECRET,
           "PYTHONPATH": str(ROOT)}
    env.pop("CVF_APP_ID", None)
    config = "python:bot.gunicorn_conf"
    if args.trace:
        args.trace.mkdir(parents=True, exist_ok=True)
        for old in [*args.trace.glob("trace-*.txt"), args.trace / "start"]:
            old.unlink(missing_ok=True)
        env["CVF_TRACE_DIR"] = str(args.trace.resolve())
        config = str(ROOT / "bench" / "gunicorn_trace.py")
    with open(log_path, "wb") as log:
        bot = subprocess.Popen(load.gunicorn_command(bot_port, args.workers, args.threads,
                                                     config),
                               cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    comment_writes = 0
    try:
        load.wait_healthy(bot_port, bot)
        warm = load.Client(bot_port)
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(lambda item: warm.post(*item),
                          load.deliveries(args.warmup, args.pool, args.seed + 1)))
        commands.put("stats")
        before = port_out.get(timeout=60)
        rss_start_by = load.rss_by_process(bot.pid)
        rss_start = sum(rss_start_by.values())
        if args.trace:
            (args.trace / "start").touch()
            time.sleep(2)  # each worker's baseline snapshot, before the run starts

        client = load.Client(bot_port)
        commenter = Commenter(sim_port)
        lock = threading.Lock()

        def send(item: tuple[Any, ...]) -> None:
            nonlocal comment_writes
            if time.perf_counter() > stop_at:
                return
            if item[0] == "rfc":
                _, number, author, text = item
                comment_id = commenter.comment(number, author, text)
                event, body = "issue_comment", comment_payload(template, number, comment_id,
                                                               author, text)
                with lock:
                    comment_writes += 1
            else:
                _, event, body = item
            sent = time.perf_counter()
            status = client.post(event, body)
            took = time.perf_counter() - sent
            with lock:
                latencies.append(took)
                statuses[status] += 1
                done = len(latencies)
            if done % 1000 == 0:
                spent = time.perf_counter() - run_started
                print(f"  ... {done} deliveries in {spent:.0f}s ({done / spent:.1f}/s), 5xx "
                      f"{sum(c for s, c in statuses.items() if s >= 500)}, RSS "
                      f"{load.rss_kib(bot.pid) / 1024:.1f} MiB", flush=True)

        run_started = time.perf_counter()
        stop_at = run_started + args.max_seconds
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            list(pool.map(send, work))
        elapsed = time.perf_counter() - run_started
        rss_end_by = load.rss_by_process(bot.pid)
        rss_end = sum(rss_end_by.values())
        commands.put("stats")
        after = port_out.get(timeout=60)
        commands.put("rfcs")
        snapshot = port_out.get(timeout=120)
    finally:
        bot.terminate()
        bot.wait(timeout=30)
        commands.put("stop")
        sim.join(timeout=10)

    bot_login = "cvf-governance[bot]"
    compare_started = time.perf_counter()
    expected = reference_ledgers(snapshot, bot_login)
    differ = []
    states = Counter()
    for number, comments in snapshot.items():
        status = [c["body"] for c in comments if c["user"] == bot_login
                  and c["body"].startswith("<!-- cvf:rfc-status -->")]
        got = ledger_rows(status[0] if len(status) == 1 else "")
        if len(status) != 1 or got != expected[number]:
            differ.append(number)
            (Path(workdir) / f"differ-{number}.json").write_text(json.dumps(
                {"bot": got, "one_by_one": expected[number], "status_comments": len(status),
                 "comments": comments}, indent=1, default=str))
        applied = [row for row in got if row[3] == "applied"]
        states[applied[-1][5] if applied else "draft"] += 1
    compare_took = time.perf_counter() - compare_started

    latencies.sort()
    n = len(latencies)
    server_errors = sum(c for s, c in statuses.items() if s >= 500)
    api_calls = after["requests"] - before["requests"] - comment_writes
    writes = after["writes"] - before["writes"] - comment_writes
    growth = 100.0 * (rss_end - rss_start) / rss_start if rss_start else 0.0
    print(f"deliveries        {n} of {len(work)} planned at concurrency {args.concurrency} "
          f"(gunicorn {args.workers} workers x {args.threads} threads), "
          f"{n_rfc} of them comments on {args.rfcs} RFC pull requests")
    print(f"throughput        {n / elapsed:.1f} events/s over {elapsed:.1f}s")
    print(f"latency           p50 {1000 * statistics.median(latencies):.0f} ms, "
          f"p99 {1000 * latencies[min(n - 1, int(n * 0.99))]:.0f} ms, "
          f"max {1000 * latencies[-1]:.0f} ms")
    print(f"status codes      {dict(sorted(statuses.items()))}")
    print(f"errors (5xx)      {server_errors}")
    print(f"GitHub API calls  {api_calls / n:.2f} per event ({api_calls} total, people's "
          f"{comment_writes} comments not counted), writes {writes / n:.2f} per event")
    print(f"duplicate bot comments (same marker, same thread): {after['duplicates']}"
          + (f" e.g. {after['duplicate_markers']}" if after["duplicates"] else ""))
    print(f"simulator errors  {after['errors']}")
    print(f"bot memory (RSS)  start {rss_start / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB "
          f"({growth:+.1f}%) after {args.warmup} warm-up deliveries; start "
          f"{load.rss_breakdown(bot.pid, rss_start_by)}, end "
          f"{load.rss_breakdown(bot.pid, rss_end_by)}")
    print(f"RFC final states  {dict(sorted(states.items()))}")
    print(f"RFC ledgers       {len(snapshot) - len(differ)}/{len(snapshot)} equal to the "
          f"one-by-one replay ({compare_took:.1f}s to replay)"
          + (f"; differ: {differ} (details in {workdir}/differ-N.json)" if differ else ""))
    print(f"gunicorn log      {log_path}")
    if args.trace:
        for path in sorted(args.trace.glob("trace-*.txt")):
            print(f"== {path}\n{path.read_text('utf-8')}", end="")
    failed = server_errors or growth >= 10.0 or differ
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
