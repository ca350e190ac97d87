"""One watcher per process for every open metrics stream.

A stream used to poll the store itself: each open ``GET /api/metrics/stream`` ran a
query every ``stream_poll`` and evaluated every alert every 15 s, so 32 open dashboards
cost 32 times the work of one, taken from the deliveries the same workers serve. Now one
watcher (started with the first stream, gone with the last) reads the newest sequence
number and the firing alerts; streams sleep until it says something changed and only
then read their new records. An idle stream costs a wake-up per poll, not a query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ALERT_INTERVAL = 15.0  # alerts read every rollup table, so check them less often than records


@dataclass
class Snapshot:
    seq: int = -1  # the store's newest sequence number (-1: not read yet)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # firing now, as JSON
    version: int = 0  # bumped whenever seq or alerts change


class Feed:
    """What every stream of one process needs to know, read once per poll."""

    def __init__(self, open_store: Callable[[], Any], settings: dict[str, Any],
                 poll: float, clock: Callable[[], datetime]) -> None:
        self.open_store = open_store
        self.settings = settings
        self.poll = poll
        self.clock = clock
        self.now = Snapshot()
        self.listeners = 0
        self.changed = threading.Condition()
        self.running = False

    def join(self) -> None:
        with self.changed:
            self.listeners += 1
            if not self.running:
                self.running = True
                threading.Thread(target=self._watch, name="cvf-metrics-feed",
                                 daemon=True).start()

    def leave(self) -> None:
        with self.changed:
            self.listeners -= 1

    def wait(self, version: int, timeout: float) -> Snapshot:
        """The snapshot once it is newer than ``version`` (or after ``timeout``)."""
        with self.changed:
            self.changed.wait_for(lambda: self.now.version != version, timeout)
            return self.now

    def _watch(self) -> None:
        from bot.metrics.alerts import evaluate

        store = self.open_store()
        next_alerts = 0.0
        try:
            while True:
                with self.changed:
                    if self.listeners <= 0:
                        self.running = False
                        return
                seq = store.last_seq()
                alerts = self.now.alerts
                if time.monotonic() >= next_alerts:
                    next_alerts = time.monotonic() + ALERT_INTERVAL
                    alerts = [a.to_json() for a in evaluate(store, self.settings, self.clock())]
                with self.changed:
                    if seq != self.now.seq or alerts != self.now.alerts:
                        self.now = Snapshot(seq, alerts, self.now.version + 1)
                        self.changed.notify_all()
                time.sleep(self.poll)
        except BaseException:
            with self.changed:
                self.running = False
            raise
        finally:
            store.close()
