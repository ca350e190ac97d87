"""Timed work (closing comment periods...) for the long-running host.

No webhook fires when a deadline passes, so ``cvf serve`` runs ``router.ticks`` for every
repository it serves on a fixed interval. Each tick gets its own adapter and the
repository's config; a failure is logged and the next repository still runs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from bot.config import Config
from bot.events import Router
from bot.github.delivery import RepoConfigCache, handler_name
from bot.github.factory import GitHubFactory

log = logging.getLogger("cvf.ticker")


def run_ticks(router: Router, factory: GitHubFactory, repos: list[tuple[str, int | None]],
              configs: RepoConfigCache, now: datetime) -> int:
    """One round over every repository; returns how many ticks failed."""
    failures = 0
    for repo, installation in repos:
        try:
            github = factory(repo, installation)
            config: Config = configs.get(github, {})
        except Exception as exc:
            log_failure(repo=repo, tick="prepare", exc=exc, now=now)
            failures += 1
            continue
        for tick in router.ticks:
            try:
                tick(github, config, now)
            except Exception as exc:
                log_failure(repo=repo, tick=handler_name(tick), exc=exc, now=now)
                failures += 1
    return failures


def log_failure(*, repo: str, tick: str, exc: BaseException, now: datetime | None) -> None:
    """One JSON line per failed tick (what a log pipeline can count and alert on), never a
    traceback: the error's type and message say what failed and where."""
    line = {"ticker": "failed", "repo": repo, "tick": tick, "error_type": type(exc).__name__,
            "error": str(exc)[:500]}
    if now is not None:
        line["at"] = now.isoformat()
    log.error(json.dumps(line))


class Ticker(threading.Thread):
    """A daemon thread calling ``round()`` at once, then every ``interval`` seconds.

    The first round runs at start so a deadline that passed while the bot was down is
    handled on restart, not one interval later.
    """

    def __init__(self, interval: float, round_: Callable[[], object]) -> None:
        super().__init__(name="cvf-ticker", daemon=True)
        self.interval = interval
        self._round = round_
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._round()
            except Exception as exc:
                log_failure(repo="*", tick="round", exc=exc, now=None)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
