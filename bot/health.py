"""Can this deployment work? What ``/healthz`` answers.

A load balancer or an orchestrator reads ``/healthz`` to decide whether to send
deliveries here, so it must say 503 — with the reason — when the bot cannot do its job:
no webhook secret (every delivery would be refused), no usable GitHub credentials, or
GitHub not reachable with them. A reachable GitHub is remembered; a failed probe is
tried again after ``RETRY_AFTER`` seconds, so a recovered network turns the answer to 200
without a restart and a busy health check does not hammer GitHub.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.errors import CvfError
from bot.github.port import GitHubError

RETRY_AFTER = 30.0


@dataclass
class Health:
    """The deployment's readiness, probed lazily and cached."""

    secret_env: str
    has_secret: bool
    factory: Callable[[], object]  # builds the GitHub factory (raises CvfError when it can't)
    clock: Callable[[], float] = time.monotonic
    _reachable: bool = False
    _failure: str = ""
    _next_probe: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def problems(self) -> list[str]:
        found: list[str] = []
        if not self.has_secret:
            found.append(f"no webhook secret: set {self.secret_env} to the secret of the "
                         f"GitHub webhook (every delivery is refused until then)")
        try:
            factory = self.factory()
        except CvfError as exc:
            hint = f" ({exc.hint})" if getattr(exc, "hint", None) else ""
            found.append(f"no usable GitHub credentials: {exc}{hint}")
            return found
        problem = self._probe(factory)
        if problem:
            found.append(problem)
        return found

    def _probe(self, factory: object) -> str:
        probe = getattr(factory, "probe", None)
        if probe is None:
            return ""  # a factory that cannot be probed (tests' fakes) is taken as reachable
        with self._lock:
            if self._reachable:
                return ""
            if self.clock() < self._next_probe:
                return self._failure
            try:
                probe()
            except (GitHubError, CvfError, OSError) as exc:
                self._failure = f"GitHub is not reachable with the configured credentials: {exc}"
                self._next_probe = self.clock() + RETRY_AFTER
                return self._failure
            self._reachable = True
            self._failure = ""
            return ""
