"""Production settings for the webhook app under gunicorn.

    gunicorn -c python:bot.gunicorn_conf --bind 0.0.0.0:8000 'bot.app:create_app()'

Command-line options still win over these (``--workers 4``).

Why gevent workers (issue #14): a thread-per-connection worker (gthread, 2 x 8 threads)
is held by whoever is connected, not by whoever is working. Sixteen clients sending one
header line per second, or sixteen open ``GET /api/metrics/stream`` connections (each
held up to 5 minutes), took every thread: a signed ping waited 23 s or more and GitHub,
which gives a delivery 10 s, gave up. A gevent worker serves each connection in a
greenlet that costs a few KiB while it waits, and waits only on sockets and sleeps,
never on a thread. Handlers talk to GitHub over sockets (PyGithub, requests), which gevent
makes cooperative; their CPU work is short and runs between those waits. Measured with
``python bench/attacks.py serving``: with 64 slow clients and 32 open streams a signed
ping is answered in well under a second and a burst of 200 deliveries keeps its
throughput (figures in SECURITY.md). ``worker_connections`` bounds the connections one
worker holds; past ``workers x worker_connections`` idle connections, put a buffering
reverse proxy in front (it then holds slow clients instead of the bot).

The malloc arena cap: glibc gives each new thread that contends for the heap its own
arena (up to 8 per core), and memory freed in one arena is not reused by another: with 8
request threads, each worker of ``bench/soak.py`` sat ~4 MiB higher than with two
arenas. Greenlets are not threads, but libraries still start a few (DNS resolution, the
ticker), so the cap stays; ``MALLOC_ARENA_MAX`` does the same when exported before
gunicorn starts, and here it is applied in each worker right after the fork.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

workers = 2
worker_class = "gevent"
worker_connections = 1000
timeout = 120

# glibc's mallopt parameter number for the arena cap (malloc.h: M_ARENA_MAX).
M_ARENA_MAX = -8
ARENAS = 2


def cap_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Limit glibc's malloc arenas; False where there is no glibc (musl, macOS).

    An explicit ``MALLOC_ARENA_MAX`` in the environment is the operator's choice and
    glibc has already applied it, so it is left alone.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn hook: runs in the new worker before it starts serving."""
    cap_malloc_arenas()
