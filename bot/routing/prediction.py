"""Predicted load: what an agent reported plus the work routed to it that is still running.

Reported load lags (an agent reports every few seconds, a burst arrives in one). Each
assignment therefore counts as one unit of load until it is completed or until its
expected duration has passed; the expected duration is learned per agent from the
durations of its completed work (an exponentially weighted mean), so a slow agent keeps
its assignments longer than a fast one.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from dataclasses import dataclass


@dataclass
class _Assignment:
    agent_id: str
    expires_at: float


class LoadPredictor:
    def __init__(self, default_duration: float = 60.0, smoothing: float = 0.3) -> None:
        if default_duration <= 0:
            raise ValueError("default_duration must be positive")
        self.default_duration = default_duration
        self.smoothing = smoothing
        self._ids = itertools.count(1)
        self._open: dict[int, _Assignment] = {}
        self._expiry: list[tuple[float, int]] = []
        self._pending: dict[str, int] = defaultdict(int)
        self._duration: dict[str, float] = {}

    def pending(self, agent_id: str) -> int:
        return self._pending.get(agent_id, 0)

    def expected_duration(self, agent_id: str) -> float:
        return self._duration.get(agent_id, self.default_duration)

    def assign(self, agent_id: str, now: float) -> int:
        """Count one more running assignment on ``agent_id``; returns its id for ``complete``."""
        assignment_id = next(self._ids)
        expires = now + self.expected_duration(agent_id)
        self._open[assignment_id] = _Assignment(agent_id, expires)
        heapq.heappush(self._expiry, (expires, assignment_id))
        self._pending[agent_id] += 1
        return assignment_id

    def complete(self, assignment_id: int, duration: float | None = None) -> str | None:
        """The assignment finished (after ``duration`` seconds); returns its agent, if known."""
        assignment = self._open.pop(assignment_id, None)
        if assignment is None:
            return None
        self._drop(assignment.agent_id)
        if duration is not None:
            self.observe(assignment.agent_id, duration)
        return assignment.agent_id

    def observe(self, agent_id: str, duration: float) -> None:
        """Learn from one measured duration of ``agent_id``'s work."""
        if duration < 0:
            return
        previous = self._duration.get(agent_id)
        self._duration[agent_id] = (duration if previous is None
                                    else previous + self.smoothing * (duration - previous))

    def advance(self, now: float) -> list[str]:
        """Expire assignments past their expected end; returns the agents whose load fell."""
        changed: list[str] = []
        while self._expiry and self._expiry[0][0] <= now:
            _, assignment_id = heapq.heappop(self._expiry)
            assignment = self._open.pop(assignment_id, None)
            if assignment is not None:
                self._drop(assignment.agent_id)
                changed.append(assignment.agent_id)
        return changed

    def forget(self, agent_id: str) -> None:
        self._pending.pop(agent_id, None)
        self._duration.pop(agent_id, None)
        for assignment_id in [i for i, a in self._open.items() if a.agent_id == agent_id]:
            del self._open[assignment_id]

    def _drop(self, agent_id: str) -> None:
        left = self._pending.get(agent_id, 0) - 1
        if left > 0:
            self._pending[agent_id] = left
        else:
            self._pending.pop(agent_id, None)
