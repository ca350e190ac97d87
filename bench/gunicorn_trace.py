"""gunicorn config for ``bench/soak.py --trace DIR``: production settings plus tracemalloc.

RSS alone cannot tell a leak (Python objects kept alive) from the allocator holding on to
freed memory. When ``DIR/start`` appears (soak.py creates it after the warm-up) each
worker starts tracing its allocations; when it exits it writes ``DIR/trace-<pid>.txt``:
gc object counts and RSS at that start and at exit, and the source lines whose
allocations made since the start are still alive (by size), i.e. what a leak would be.
Tracing costs several times the CPU, so its throughput figures mean nothing.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bot import gunicorn_conf

workers = gunicorn_conf.workers
worker_class = gunicorn_conf.worker_class
worker_connections = gunicorn_conf.worker_connections
timeout = gunicorn_conf.timeout

FRAMES = 6
_baseline: dict[str, Any] = {}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _figures() -> str:
    current, peak = tracemalloc.get_traced_memory()
    return (f"traced {current / 1024:.0f} KiB (peak {peak / 1024:.0f}), "
            f"gc objects {len(gc.get_objects())}, gc counts {gc.get_count()}, "
            f"RSS {_rss_kib() / 1024:.1f} MiB")


def _wait_for_start(folder: Path) -> None:
    while not (folder / "start").exists():
        time.sleep(0.5)
    gc.collect()
    tracemalloc.start(FRAMES)
    _baseline["figures"] = _figures()


def post_fork(server: Any, worker: Any) -> None:
    gunicorn_conf.post_fork(server, worker)
    folder = os.environ.get("CVF_TRACE_DIR")
    if folder:
        threading.Thread(target=_wait_for_start, args=(Path(folder),), daemon=True).start()


def worker_exit(server: Any, worker: Any) -> None:
    folder = os.environ.get("CVF_TRACE_DIR")
    if not folder or "figures" not in _baseline:
        return
    gc.collect()
    end = tracemalloc.take_snapshot()
    lines = [f"baseline {_baseline['figures']}", f"exit     {_figures()}",
             "allocations made since the start and still alive, largest (by line):"]
    for stat in end.statistics("lineno")[:15]:
        lines.append(f"  {stat.size / 1024:8.1f} KiB {stat.count:6d} blocks  "
                     f"{stat.traceback[0]}")
    (Path(folder) / f"trace-{os.getpid()}.txt").write_text("\n".join(lines) + "\n")
