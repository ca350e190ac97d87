"""Metrics benchmark: ingest 100k, 1M and 10M records, then report every period.

    python bench/metrics.py                # all three sizes (10M takes several minutes)
    python bench/metrics.py --sizes 100000 # one size
    python bench/metrics.py --backend postgresql   # the same on a throw-away PostgreSQL

Per size it prints ingest records/s, report time per period (median of 21), the peak
memory of the ingest+report process, and the p50/p95/p99 latency error of the report
against exact values from sorting every record of the period.

Targets (issue 6): ingest >= 100,000 records/s; report time flat in the number of
records (10M within 1.5x of 100k) and under 200 ms; percentile error <= 1%.
Each step runs in its own process so peak memory belongs to that step alone (the parser
processes a big import starts are given apart). Ingest is also given per second of CPU
time (this process and its parser processes together), since wall time on a shared
machine says more about the neighbours than about the code; the load average is printed
next to it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.metrics.aggregate import PERIODS, dashboard, window  # noqa: E402
from bot.metrics.store import open_store  # noqa: E402

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
SPAN = 30 * 86400
SKILLS = [f"skill-{i:02d}" for i in range(20)]
AGENTS = [f"agent-{i:02d}" for i in range(12)]
RISKS = ("R0", "R0", "R1", "R1", "R1", "R2", "R3")
DECISIONS = {"R0": "auto_execute", "R1": "scope_guard", "R2": "approval_required",
             "R3": "human_intervention"}


def generate(size: int, out: Path, exact_out: Path) -> None:
    """Records spread evenly over the 30 days before NOW, in time order, ids included."""
    rng = random.Random(size)
    end = NOW.timestamp()
    start = end - SPAN
    stamps = array("d")
    latencies = array("d")
    fmt = "%Y-%m-%dT%H:%M:%S"
    with out.open("w") as fh:
        for i in range(size):
            ts = start + (i + rng.random()) * SPAN / size
            latency = round(rng.lognormvariate(5.0, 0.9), 3)
            risk = rng.choice(RISKS)
            ok = rng.random() > 0.03
            moment = datetime.fromtimestamp(ts, UTC)
            stamp = moment.strftime(fmt) + f".{moment.microsecond // 1000:03d}Z"
            approval = "null"
            if risk in ("R2", "R3"):
                wait = rng.randint(30, 7200)
                requested = datetime.fromtimestamp(ts - wait, UTC).strftime(fmt) + "Z"
                granted = rng.random() > 0.1
                approval = (f'{{"required":true,"granted":{str(granted).lower()},'
                            f'"rejected":{str(not granted).lower()},"approver":"lead",'
                            f'"requested_at":"{requested}","decided_at":"{stamp}"}}')
            fh.write(f'{{"id":"b{size}-{i}","timestamp":"{stamp}",'
                     f'"skill":"{rng.choice(SKILLS)}","agent":"{rng.choice(AGENTS)}",'
                     f'"risk_level":"{risk}","decision":"{DECISIONS[risk]}",'
                     f'"success":{str(ok).lower()},'
                     f'"error_type":{"null" if ok else chr(34) + "timeout" + chr(34)},'
                     f'"latency_ms":{latency},"approval":{approval},'
                     f'"audit":{{"report_posted":true,"approval_recorded":true}},'
                     f'"source":"bench"}}\n')
            stamps.append(ts)
            latencies.append(latency)
    exact = {}
    for name in PERIODS:
        win = window(name, now=NOW)
        chosen = sorted(lat for ts, lat in zip(stamps, latencies, strict=True)
                        if win.since <= ts < win.until)
        exact[name] = {str(p): chosen[max(1, math.ceil(p / 100 * len(chosen))) - 1]
                       for p in (50, 95, 99)} if chosen else {}
    exact_out.write_text(json.dumps(exact))


def decode_cpu_seconds(data: Path) -> float:
    """CPU seconds to decode and validate every line into columns, with nothing stored.

    Printed next to ingest so it is plain how much of ingest is parsing (the part the
    parser processes take over) and how much is the store.
    """
    from bot.metrics.ingest import CHUNK, parse_chunk

    cpu = time.process_time()
    with data.open() as fh:
        while batch := list(itertools.islice(fh, CHUNK)):
            if parse_chunk(1, batch, data.name, "bench").problems:
                raise SystemExit("bench data is invalid")
    return time.process_time() - cpu


def ingest_and_report(size: int, data: Path, db: Path | str) -> dict[str, object]:
    decode_cpu = decode_cpu_seconds(data)
    store = open_store(db)
    started = time.perf_counter()
    cpu = _cpu_seconds()
    with data.open() as fh:
        result = store.ingest_lines(fh, where=data.name)
    ingest_s = time.perf_counter() - started
    ingest_cpu = _cpu_seconds() - cpu
    assert result.added == size, result
    reports = {}
    for name in PERIODS:
        timings = []
        view: dict[str, object] = {}
        for _ in range(21):
            t0 = time.perf_counter()
            view = dashboard(store, window(name, now=NOW))
            _render(view)
            timings.append(time.perf_counter() - t0)
        reports[name] = {"ms": statistics.median(timings) * 1000, "summary": view["summary"]}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"size": size, "ingest_s": ingest_s, "ingest_rps": size / ingest_s,
            "ingest_cpu_rps": size / ingest_cpu, "load": os.getloadavg()[0],
            "decode_share": decode_cpu / ingest_cpu,
            "reports": reports, "peak_mb": peak_mb, "worker_mb": worker_mb,
            "db_mb": _size_mb(db)}


def _size_mb(db: Path | str) -> float:
    if isinstance(db, Path):
        return db.stat().st_size / 2**20
    import psycopg

    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return float(row[0]) / 2**20 if row else 0.0


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the parser processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _render(view: dict[str, object]) -> None:
    try:
        from bot.metrics.report import render_report
    except ImportError:  # report module not installed: time the view alone
        return
    render_report(view, "markdown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--step", choices=["generate", "ingest"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite",
                        help="postgresql: a throw-away cluster (tests/pgcluster.py, fsync on)")
    args = parser.parse_args()
    if args.step:
        folder = Path(args.dir)
        data, exact = folder / f"{args.size}.jsonl", folder / f"{args.size}.exact.json"
        if args.step == "generate":
            generate(args.size, data, exact)
        else:
            target = args.dsn or folder / f"{args.size}.db"
            print(json.dumps(ingest_and_report(args.size, data, target)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    cluster = None
    if args.backend == "postgresql":
        from tests.pgcluster import Cluster

        cluster = Cluster(settings={"fsync": "on", "synchronous_commit": "on",
                                    "full_page_writes": "on", "max_wal_size": "8GB"}).start()
    with tempfile.TemporaryDirectory(prefix="cvf-bench-") as tmp:
        for size in sizes:
            base = [sys.executable, __file__, "--size", str(size), "--dir", tmp]
            if cluster is not None:
                base += ["--dsn", cluster.new_database(f"bench_{size}")]
            t0 = time.perf_counter()
            subprocess.run([*base, "--step", "generate"], check=True)
            print(f"# generated {size:,} records in {time.perf_counter() - t0:.1f}s",
                  flush=True)
            out = subprocess.run([*base, "--step", "ingest"], check=True,
                                 capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            exact = json.loads((Path(tmp) / f"{size}.exact.json").read_text())
            row["errors"] = {name: {p: abs(row["reports"][name]["summary"][f"p{p}_latency_ms"]
                                           - want) / want * 100
                                    for p, want in exact[name].items()}
                             for name in PERIODS if exact[name]}
            rows.append(row)
            _print_row(row)
            for suffix in (".jsonl", ".db", ".db-wal", ".db-shm"):
                (Path(tmp) / f"{size}{suffix}").unlink(missing_ok=True)
    if cluster is not None:
        cluster.stop()
    _print_summary(rows)


def _print_row(row: dict) -> None:
    print(f"size {row['size']:>11,}: ingest {row['ingest_rps']:>9,.0f} rec/s wall "
          f"({row['ingest_s']:.1f}s; {row['ingest_cpu_rps']:,.0f} rec/s of CPU time, "
          f"{row['decode_share']:.0%} of it parsing; "
          f"load average {row['load']:.1f}), peak {row['peak_mb']:.0f} MB "
          f"(parser processes {row['worker_mb']:.0f} MB), "
          f"db {row['db_mb']:.0f} MB", flush=True)
    for name, rep in row["reports"].items():
        errs = row["errors"].get(name, {})
        err_text = " ".join(f"p{p} {e:.3f}%" for p, e in errs.items())
        print(f"    report {name:>3}: {rep['ms']:7.1f} ms  "
              f"({rep['summary']['total_executions']:,} executions)  error {err_text}",
              flush=True)


def _print_summary(rows: list[dict]) -> None:
    if not rows:
        return
    first, last = rows[0], rows[-1]
    worst_ms = max(r["ms"] for row in rows for r in row["reports"].values())
    worst_err = max((e for row in rows for errs in row["errors"].values()
                     for e in errs.values()), default=0.0)
    ratio = max(last["reports"][n]["ms"] / first["reports"][n]["ms"] for n in PERIODS)
    print("\nsummary")
    print(f"  ingest: min {min(r['ingest_rps'] for r in rows):,.0f} rec/s wall, "
          f"{min(r['ingest_cpu_rps'] for r in rows):,.0f} rec/s of CPU time "
          "(target >= 100,000)")
    print(f"  report: max {worst_ms:.1f} ms (target < 200 ms); "
          f"{last['size']:,} vs {first['size']:,}: {ratio:.2f}x (target <= 1.5x)")
    if len(rows) > 2:
        middle = rows[-2]
        tail = max(last["reports"][n]["ms"] / middle["reports"][n]["ms"] for n in PERIODS)
        print(f"  report growth {middle['size']:,} -> {last['size']:,}: max {tail:.2f}x "
              "(rollups saturate: every bin in use)")
    print(f"  percentile error: max {worst_err:.3f}% (target <= 1%)")


if __name__ == "__main__":
    main()
