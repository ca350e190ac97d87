"""Production settings for the webhook app under gunicorn.

    gunicorn -c python:bot.gunicorn_conf --bind 0.0.0.0:8000 'bot.app:create_app()'

Command-line options still win over these (``--workers 4``). The one setting here that
a command line cannot give is the malloc arena cap. glibc gives each new thread that
contends for the heap its own arena (up to 8 per core), and memory freed in one arena is
not reused by another: with 8 request threads, each worker of ``bench/soak.py`` sat
~4 MiB higher than with two arenas (master + 2 workers after 20,000 deliveries: 183.7
vs 176.1 MiB), at the same throughput. The ``MALLOC_ARENA_MAX``
environment variable does the same, but only if the deployment remembers to export it
before gunicorn starts; here it is applied in each worker right after the fork, before
any request thread exists.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

workers = 2
threads = 8
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
    """gunicorn hook: runs in the new worker before its request threads start."""
    cap_malloc_arenas()
