"""Retrying GitHub requests: 5xx and secondary rate limits, with backoff and a hard cap.

PyGithub's ``GithubRetry`` (a urllib3 ``Retry``) already tells a secondary rate limit
from a plain 403 and waits for a primary limit's reset, but left alone it honours any
``Retry-After`` and may sleep for an hour. ``CappedRetry`` keeps its judgement and adds
what a webhook bot needs: no single wait longer than ``max_wait`` (longer waits raise
``RateLimitExceededExceedsMaxWait`` at once, which the adapter reports as a clear
error), every retry counted in ``CallStats``, and an injectable sleep so tests and
benchmarks do not really wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from github.GithubException import RateLimitExceededExceedsMaxWait
from github.GithubRetry import GithubRetry
from urllib3 import Retry

from bot.github.port import CallStats

Sleeper = Callable[[float], None]

# GitHub advises waiting at least a minute after a secondary rate limit with no Retry-After.
SECONDARY_RATE_WAIT = 60.0
RETRY_METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"})


class CappedRetry(GithubRetry):
    """``GithubRetry`` with a cap on every wait, counted retries and a replaceable clock."""

    def __init__(self, *, stats: CallStats | None = None, sleeper: Sleeper | None = None,
                 max_wait: float = 60.0, **kwargs: Any) -> None:
        self.stats = stats
        self.sleeper = sleeper or time.sleep
        self.max_wait = float(max_wait)
        kwargs.setdefault("secondary_rate_wait", min(SECONDARY_RATE_WAIT, self.max_wait))
        kwargs.setdefault("max_rate_limit_wait", self.max_wait)
        kwargs.setdefault("status_forcelist", list(range(500, 600)) + [429])
        kwargs.setdefault("allowed_methods", RETRY_METHODS)
        kwargs.setdefault("backoff_max", self.max_wait)
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> CappedRetry:
        kw.update(stats=self.stats, sleeper=self.sleeper, max_wait=self.max_wait)
        return super().new(**kw)

    def increment(self, method: str | None = None, url: str | None = None,  # type: ignore[override]
                  response: Any = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: Any = None) -> Retry:
        if error is not None and (method or "").upper() == "POST" and self._is_read_error(error):
            # The request went out and no answer came back: it may have taken effect, and a
            # second POST would post twice. Fail; the redelivered event recomputes instead.
            raise error.with_traceback(_stacktrace)
        if response is not None:
            wait = _retry_after(response)
            if wait is not None and wait > self.max_wait:
                raise RateLimitExceededExceedsMaxWait(
                    response.status, {"message": f"Retry-After {wait:.0f}s"},
                    dict(response.headers), wait=wait)
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if self.stats is not None:
            self.stats.retries += 1
            self.stats.requests += 1
        return retry

    def sleep(self, response: Any = None) -> None:
        wait = _retry_after(response) if response is not None else None
        if wait is None or not self.respect_retry_after_header:
            wait = self.get_backoff_time()
        wait = min(max(wait, 0.0), self.max_wait)
        if wait > 0:
            self.sleeper(wait)


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After") if response.headers else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def make_retry(*, attempts: int, max_wait: float, stats: CallStats,
               sleeper: Sleeper | None = None, backoff_factor: float = 0.5) -> CappedRetry:
    """One adapter's policy: ``attempts`` retries, backoff 0 s, 1 s, 2 s... never over the cap."""
    return CappedRetry(stats=stats, sleeper=sleeper, max_wait=max_wait, total=attempts,
                       connect=attempts, read=attempts, status=attempts,
                       backoff_factor=backoff_factor, raise_on_status=False,
                       respect_retry_after_header=True)
