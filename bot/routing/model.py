"""The routing vocabulary: risk levels, decisions, requests and results.

These are the names people already know from the CVF design, so they are kept as they
are there (``RiskLevel.R2``, ``RoutingDecision.APPROVAL_REQUIRED``); their ``value`` is the
spelling of the execution-record contract the metrics engine reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import Enum, IntEnum
from typing import Any, TypeVar

from bot.errors import InputError

_Level = TypeVar("_Level", bound=IntEnum)


def _member(cls: type[_Level], value: object) -> _Level | None:
    """An ordered enum member from itself, its number or its name (any case); else None."""
    if isinstance(value, cls):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and \
            value in {member.value for member in cls}:
        return cls(value)
    text = str(value).strip().upper()
    return cls[text] if text in cls.__members__ else None


class RiskLevel(IntEnum):
    """How much harm a skill can do; ordered, so ``max()`` of levels is the highest risk."""

    R0 = 0
    R1 = 1
    R2 = 2
    R3 = 3

    @classmethod
    def parse(cls, value: RiskLevel | str | int) -> RiskLevel:
        """``"R2"``, ``"r2"``, ``2`` or ``RiskLevel.R2`` -> ``RiskLevel.R2``."""
        found = _member(cls, value)
        if found is None:
            raise InputError(f'expected a risk level R0, R1, R2 or R3, got "{value}"',
                             hint="write the level as R0 (lowest) to R3 (highest)")
        return found

    @property
    def decision(self) -> RoutingDecision:
        return _DECISION_OF[self]

    def __str__(self) -> str:
        return self.name


class RoutingDecision(Enum):
    """What has to happen before a skill may run; one per risk level."""

    AUTO_EXECUTE = "auto_execute"
    SCOPE_GUARD = "scope_guard"
    APPROVAL_REQUIRED = "approval_required"
    HUMAN_INTERVENTION = "human_intervention"

    def __str__(self) -> str:
        return self.value


_DECISION_OF = {
    RiskLevel.R0: RoutingDecision.AUTO_EXECUTE,
    RiskLevel.R1: RoutingDecision.SCOPE_GUARD,
    RiskLevel.R2: RoutingDecision.APPROVAL_REQUIRED,
    RiskLevel.R3: RoutingDecision.HUMAN_INTERVENTION,
}


class Priority(IntEnum):
    """Batch order: ``route_batch`` serves URGENT requests first."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @classmethod
    def parse(cls, value: Priority | str | int) -> Priority:
        found = _member(cls, value)
        if found is None:
            raise InputError(f'expected a priority low, normal, high or urgent, got "{value}"')
        return found


@dataclass(frozen=True)
class TimeWindow:
    """A weekly availability window in UTC: ``days`` 0=Monday..6=Sunday, ``start`` <= t < ``end``.

    A window whose end is before its start runs over midnight (22:00-06:00).
    """

    start: time
    end: time
    days: frozenset[int] = frozenset(range(7))

    def contains(self, moment: datetime) -> bool:
        clock = moment.time().replace(tzinfo=None)
        day = moment.weekday()
        if self.start <= self.end:
            return day in self.days and self.start <= clock < self.end
        if clock >= self.start:
            return day in self.days
        return (day - 1) % 7 in self.days and clock < self.end

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        """``"mon-fri 08:00-18:00"``, ``"sat,sun 10:00-14:00"`` or ``"22:00-06:00"`` (every day)."""
        parts = str(text).split()
        if len(parts) not in (1, 2):
            raise InputError(f'expected a time window like "mon-fri 08:00-18:00", got "{text}"')
        days = _parse_days(parts[0], text) if len(parts) == 2 else frozenset(range(7))
        span = parts[-1].split("-")
        if len(span) != 2:
            raise InputError(f'expected a time window like "mon-fri 08:00-18:00", got "{text}"')
        try:
            start, end = (time.fromisoformat(s) for s in span)
        except ValueError:
            raise InputError(f'expected times as HH:MM in "{text}"') from None
        return cls(start=start, end=end, days=days)


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_days(spec: str, text: str) -> frozenset[int]:
    days: set[int] = set()
    for item in spec.lower().split(","):
        ends = item.split("-")
        if not all(e in _DAYS for e in ends) or len(ends) > 2:
            raise InputError(f'unknown day "{item}" in time window "{text}"',
                             hint="use mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri")
        first, last = _DAYS.index(ends[0]), _DAYS.index(ends[-1])
        day = first
        days.add(day)
        while day != last:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


@dataclass(frozen=True)
class Constraints:
    """Route planning limits: every one given must hold for an agent to be chosen."""

    labels: frozenset[str] = frozenset()
    region: str | None = None
    exclude_agents: frozenset[str] = frozenset()
    max_cost: float | None = None
    at: datetime | None = None  # when the work runs; agents with windows must be available

    @classmethod
    def of(cls, *, labels: Iterable[str] = (), region: str | None = None,
           exclude_agents: Iterable[str] = (), max_cost: float | None = None,
           at: datetime | None = None) -> Constraints:
        return cls(labels=frozenset(labels), region=region,
                   exclude_agents=frozenset(exclude_agents), max_cost=max_cost, at=at)

    @property
    def empty(self) -> bool:
        return (not self.labels and self.region is None and not self.exclude_agents
                and self.max_cost is None and self.at is None)

    def merged(self, other: Constraints) -> Constraints:
        """Both sets of limits at once (``other`` wins on region and time; costs take the
        lower maximum)."""
        if other.empty:
            return self
        if self.empty:
            return other
        costs = [c for c in (self.max_cost, other.max_cost) if c is not None]
        return Constraints(labels=self.labels | other.labels,
                           region=other.region if other.region is not None else self.region,
                           exclude_agents=self.exclude_agents | other.exclude_agents,
                           max_cost=min(costs) if costs else None,
                           at=other.at or self.at)


NO_CONSTRAINTS = Constraints()


@dataclass(frozen=True)
class RoutingRequest:
    """One skill to place. Fields left out come from the registered skill."""

    skill_id: str
    risk_level: RiskLevel | str | int | None = None
    required_capabilities: Iterable[str] | None = None
    priority: Priority | str | int = Priority.NORMAL
    constraints: Constraints = NO_CONSTRAINTS
    reserve: bool = True  # count the assignment towards the agent's predicted load

    def __post_init__(self) -> None:
        if self.risk_level is not None:
            object.__setattr__(self, "risk_level", RiskLevel.parse(self.risk_level))
        if self.required_capabilities is not None:
            object.__setattr__(self, "required_capabilities",
                               tuple(sorted(set(self.required_capabilities))))
        object.__setattr__(self, "priority", Priority.parse(self.priority))


@dataclass(frozen=True)
class RoutingResult:
    """The decision for one request, with everything needed to explain it."""

    skill_id: str
    risk_level: RiskLevel
    decision: RoutingDecision
    agent_id: str | None
    fallback_agents: tuple[str, ...] = ()
    approval_role: str | None = None
    confidence: float = 0.0
    reason: str = ""
    required_capabilities: tuple[str, ...] = ()
    missing_capabilities: tuple[str, ...] = ()
    priority: Priority = Priority.NORMAL
    unhealthy_agents: tuple[str, ...] = field(default=())

    @property
    def routed(self) -> bool:
        return self.agent_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "skill_id": self.skill_id,
            "risk_level": self.risk_level.name,
            "decision": self.decision.value,
            "agent_id": self.agent_id,
            "fallback_agents": list(self.fallback_agents),
            "approval_role": self.approval_role,
            "confidence": self.confidence,
            "reason": self.reason,
            "required_capabilities": list(self.required_capabilities),
            "missing_capabilities": list(self.missing_capabilities),
            "priority": self.priority.name.lower(),
        }


@dataclass
class Agent:
    """A registered agent; ``load`` is what the owner reported, prediction adds to it."""

    id: str
    capabilities: frozenset[str]
    capacity: float = 1.0
    labels: frozenset[str] = frozenset()
    region: str | None = None
    cost: float = 0.0
    windows: tuple[TimeWindow, ...] = ()
    load: float = 0.0
    error_rate: float = 0.0
    version: int = 0

    def available_at(self, moment: datetime) -> bool:
        return not self.windows or any(w.contains(moment) for w in self.windows)


@dataclass(frozen=True)
class Skill:
    id: str
    risk_level: RiskLevel
    required_capabilities: tuple[str, ...] = ()
    approval_role: str | None = None
    paths: tuple[str, ...] = ()
    constraints: Constraints = NO_CONSTRAINTS  # always applied when routing this skill
