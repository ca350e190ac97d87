"""The attacks of issue #14, replayed: one figure per attack (pass/fail lives in the tests).

    python bench/attacks.py                    # every attack
    python bench/attacks.py serving            # only the slow clients and open streams
    python bench/attacks.py serving --worker-class gthread --threads 8   # the old design

1. flood    10,000 refused `/rfc` commands from one person, one delivery, through the
            webhook app and the GitHub simulator: status comment size, answers, writes.
2. deep     a signed webhook nested 100,000 deep (array, object, form), and the same body
            on POST /api/executions, against gunicorn: status and time.
3. serving  64 slow clients (one header line per second) and 32 open
            GET /api/metrics/stream connections against gunicorn with bot/gunicorn_conf.py:
            a signed ping's latency, and a burst of 200 deliveries' throughput compared
            with the same burst before the attack.
4. zero     `cvf metrics ingest - < /dev/zero`: exit code, first error line, peak memory.
5. config   a 16 MB config with 900,000 keys: time to refusal and the message.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import load  # noqa: E402

from bot.github.signature import sign  # noqa: E402
from tests.serving import API_TOKEN, SECRET, Attackers, Gunicorn, burst, ping  # noqa: E402

SLOW_CLIENTS = 64
STREAMS = 32
BURST = 200
DEEP = 100_000


# -- gunicorn with the simulator ----------------------------------------------------------
@contextmanager
def served(worker_class: str | None = None, threads: int | None = None) -> Iterator[int]:
    """gunicorn with the production config (optionally another worker class) in front of
    the GitHub simulator in its own process (seeded like bench/load.py); yields the port."""
    ctx = mp.get_context("spawn")
    port_out, commands = ctx.Queue(), ctx.Queue()
    sim = ctx.Process(target=load.simulator_process, args=(50, port_out, commands),
                      daemon=True)
    sim.start()
    sim_port = port_out.get(timeout=60)
    try:
        with Gunicorn(f"http://127.0.0.1:{sim_port}", worker_class=worker_class,
                      threads=threads) as bot:
            yield bot.port
    finally:
        commands.put("stop")
        sim.join(timeout=10)


def mix(count: int, seed: int) -> list[tuple[str, bytes]]:
    """bench/load.py's delivery mix (PRs, reviews, comments, pushes, runs)."""
    return load.deliveries(count, 50, seed)


def serving(worker_class: str | None, threads: int | None) -> None:
    name = (f"{worker_class}" + (f" x {threads} threads" if threads else "")
            if worker_class else "bot/gunicorn_conf.py")
    with served(worker_class, threads) as port:
        burst(port, mix(50, 3))  # warm up
        base = burst(port, mix(BURST, 7))
        attack = Attackers(port, slow=SLOW_CLIENTS, streams=STREAMS)
        try:
            time.sleep(3)
            pings = [ping(port, timeout=30)]
            starved = pings[0] == float("inf")
            # A server that cannot answer a ping would take minutes for the burst.
            under = 0.0 if starved else burst(port, mix(BURST, 7))
            if not starved:
                pings += [ping(port) for _ in range(9)]
            streams = attack.open_streams()
        finally:
            attack.close()
    if starved:
        print(f"3 serving  [{name}] {SLOW_CLIENTS} slow clients + {STREAMS} streams: signed "
              f"ping not answered within 30 s; burst of {BURST}: {base:.1f} deliveries/s "
              "before, not measured under attack")
        return
    print(f"3 serving  [{name}] {SLOW_CLIENTS} slow clients + {STREAMS} streams "
          f"({streams} open throughout): signed ping median "
          f"{1000 * statistics.median(pings):.0f} ms, max {1000 * max(pings):.0f} ms; "
          f"burst of {BURST}: {base:.1f} deliveries/s before, {under:.1f}/s under attack "
          f"({100 * under / base:.0f}%)")


# -- deep JSON ----------------------------------------------------------------------------
def deep() -> None:
    bodies = {"array": b"[" * DEEP + b"]" * DEEP,
              "object": b'{"a":' * DEEP + b"1" + b"}" * DEEP}
    with served() as port:
        for name, body in [*bodies.items(),
                           ("form", urllib.parse.urlencode(
                               {"payload": bodies["array"].decode()}).encode())]:
            kind = ("application/x-www-form-urlencoded" if name == "form"
                    else "application/json")
            status, took = _post(port, "/webhook", body, {
                "X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": f"deep-{name}",
                "Content-Type": kind, "X-Hub-Signature-256": sign(body, SECRET)})
            print(f"2 deep     webhook {name:6} nested {DEEP:,}: {status} in {took * 1000:.0f} ms")
        status, took = _post(port, "/api/executions", bodies["array"],
                             {"Authorization": f"Bearer {API_TOKEN}"})
        print(f"2 deep     POST /api/executions nested {DEEP:,}: {status} in "
              f"{took * 1000:.0f} ms")


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[str, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", path, body=body, headers=headers)
    answer = conn.getresponse()
    text = answer.read()
    conn.close()
    kind = answer.headers.get("Content-Type", "")
    return f"{answer.status} {kind} {text[:80]!r}", time.perf_counter() - started


# -- the RFC flood ------------------------------------------------------------------------
def flood(count: int = 10_000) -> None:
    from bot.rfc.record import Ledger
    from tests.test_rfc_e2e import Stage

    stage = Stage()
    try:
        n = stage.open_pull()
        stage.say(n, "writer", "/rfc open")
        last = 0
        for i in range(count):
            body = f"/rfc concern {'x' * 180} {i}" if i % 2 else "/rfc accept"
            last = stage.repo.add_comment(n, "mallory", body).id
        stage.sim.reset_log()
        started = time.perf_counter()
        status = stage.deliver("issue_comment", stage.comment_event(n, last, "mallory"))
        took = time.perf_counter() - started
        writes = len(stage.sim.writes())
        body = stage.status(n)
        answers = sum("@mallory:" in b for b in stage.bot_comments(n))
        stage.sim.reset_log()
        started = time.perf_counter()
        committee = stage.say(n, "alice", "/rfc concern naming")[0]
        took_after = time.perf_counter() - started
        ok = "naming (raised by alice): blocking" in stage.status(n) \
            and stage.bot_reactions(committee)
        print(f"1 flood    {count:,} refused commands from one person in one delivery: "
              f"{status} in {took:.1f} s, {writes} GitHub writes, {answers} answer comment(s); "
              f"status comment {len(body):,} chars (ledger {len(Ledger.decode(body).encode()):,}"
              f"; GitHub's limit 65,536); a committee concern afterwards: "
              f"{'applied' if ok else 'NOT applied'} in {took_after:.1f} s")
    finally:
        stage.close()


# -- the command line ---------------------------------------------------------------------
def zero() -> None:
    root = Path(tempfile.mkdtemp(prefix="cvf-zero-"))
    started = time.perf_counter()
    with open("/dev/zero", "rb") as zero_in:
        done = subprocess.run([sys.executable, "-m", "bot", "--root", str(root), "metrics",
                               "ingest", "-"], stdin=zero_in, capture_output=True,
                              timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    first = done.stderr.decode().splitlines()[0] if done.stderr else ""
    print(f"4 zero     cvf metrics ingest - < /dev/zero: exit {done.returncode} after "
          f"{took:.2f} s, peak RSS {peak:.0f} MiB: {first}")


def config() -> None:
    root = Path(tempfile.mkdtemp(prefix="cvf-config-"))
    (root / ".github").mkdir()
    (root / ".github" / "cvf.yml").write_text(
        "rfc:\n" + "".join(f"  k{i}: {i}\n" for i in range(900_000)))
    size = (root / ".github" / "cvf.yml").stat().st_size
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot", "--root", str(root), "check"],
                          capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    took = time.perf_counter() - started
    first = done.stderr.decode().splitlines()[0] if done.stderr else ""
    print(f"5 config   {size / 1e6:.1f} MB config, 900,000 keys: exit {done.returncode} after "
          f"{took:.2f} s (the whole command): {first}")


ATTACKS: dict[str, Callable[[argparse.Namespace], object]] = {
    "flood": lambda a: flood(), "deep": lambda a: deep(),
    "serving": lambda a: serving(a.worker_class, a.threads), "zero": lambda a: zero(),
    "config": lambda a: config()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("attacks", nargs="*", default=[],
                        help=f"which attacks: {', '.join(ATTACKS)} (default: all)")
    parser.add_argument("--worker-class", default=None,
                        help="serve with this gunicorn worker class instead of the config's "
                             "(`--worker-class gthread --threads 8`: the design before #14)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per worker (gthread only)")
    args = parser.parse_args(argv)
    for name in args.attacks or list(ATTACKS):
        ATTACKS[name](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
