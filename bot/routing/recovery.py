"""Fallback recovery: when the assigned agent fails, try the next fallback after a pause.

The pause grows exponentially (capped) so a failing group of agents is not hammered, and
every attempt is recorded so the execution record can say what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 = the first retry)."""
        return min(self.maximum, self.base * self.factor ** retry)


@dataclass(frozen=True)
class Attempt:
    agent_id: str
    ok: bool
    waited: float
    error: str | None = None


@dataclass
class RecoveryOutcome:
    skill_id: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def agent_id(self) -> str | None:
        """The agent that finally did the work, or None when every one failed."""
        return self.attempts[-1].agent_id if self.ok else None

    @property
    def error_type(self) -> str | None:
        return None if self.ok or not self.attempts else self.attempts[-1].error

    def to_dict(self) -> dict[str, object]:
        return {"skill_id": self.skill_id, "ok": self.ok, "agent_id": self.agent_id,
                "attempts": [{"agent_id": a.agent_id, "ok": a.ok, "waited": a.waited,
                              "error": a.error} for a in self.attempts]}


AttemptFn = Callable[[str], object]


def run_with_fallbacks(skill_id: str, agents: list[str], attempt: AttemptFn, *,
                       backoff: Backoff, sleep: Callable[[float], None]) -> RecoveryOutcome:
    """Call ``attempt(agent)`` on each agent in turn until one returns a truthy value.

    An exception or a falsy return is a failure of that agent; the error is recorded by
    its type name (the metrics engine groups on it) and the next agent is tried.
    """
    outcome = RecoveryOutcome(skill_id=skill_id)
    for index, agent_id in enumerate(agents):
        waited = backoff.delay(index - 1) if index else 0.0
        if waited:
            sleep(waited)
        try:
            ok = bool(attempt(agent_id))
            error = None if ok else "failed"
        except Exception as exc:  # noqa: BLE001 - any agent failure moves to the next agent
            ok, error = False, type(exc).__name__
        outcome.attempts.append(Attempt(agent_id, ok, waited, error))
        if ok:
            break
    return outcome
