"""``SkillRouter``: place a skill on the least loaded capable agent, and say why.

Scale comes from an index instead of a scan. Capability -> agent ids (and label,
region -> agent ids) finds candidates; a *pool* per set of required capabilities (made
on first use, one per distinct skill requirement) holds the agents having all of them
in a lazy heap ordered by (over the health bound, load / capacity, id). A load or health
change pushes a fresh entry into the agent's pools and bumps its version; stale entries
are skipped when they surface and a heap is rebuilt when they pile up. route() reads a
handful of heap tops instead of every agent.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from bot.errors import InputError
from bot.routing.model import (
    Agent,
    Constraints,
    Priority,
    RiskLevel,
    RoutingDecision,
    RoutingRequest,
    RoutingResult,
    Skill,
    TimeWindow,
)
from bot.routing.prediction import LoadPredictor
from bot.routing.recovery import AttemptFn, Backoff, RecoveryOutcome, run_with_fallbacks

MAX_FALLBACKS = 3
DEFAULT_APPROVAL_ROLES: dict[RiskLevel, str | None] = {
    RiskLevel.R0: None,
    RiskLevel.R1: None,
    RiskLevel.R2: "approval_manager",
    RiskLevel.R3: "committee",
}
_SMALL = 32  # constraint sets this small are ranked directly, without a heap walk
_WALK_LIMIT = 4096  # heap entries read before falling back to ranking the candidate set
_MAX_POOLS = 4096  # distinct requirement sets with their own heap; others share one

HeapEntry = tuple[int, float, str, int]
PoolKey = tuple[str, ...]


class _Pool:
    """Agents having every capability in ``key``, best first (lazily)."""

    __slots__ = ("key", "members", "heap", "unhealthy", "_first_unhealthy")

    def __init__(self, key: PoolKey, members: set[str]) -> None:
        self.key = key
        self.members = members
        self.heap: list[HeapEntry] = []
        self.unhealthy: set[str] = set()
        self._first_unhealthy: list[str] | None = None

    def mark(self, agent_id: str, sick: bool) -> None:
        if sick:
            self.unhealthy.add(agent_id)
        else:
            self.unhealthy.discard(agent_id)
        self._first_unhealthy = None

    def first_unhealthy(self, count: int) -> list[str]:
        """The first ``count`` + 1 unhealthy members by id (cached until health changes)."""
        if self._first_unhealthy is None:
            self._first_unhealthy = heapq.nsmallest(count + 1, self.unhealthy)
        return self._first_unhealthy


class SkillRouter:
    """The registry of agents and skills and the routing decisions over them.

    ``clock`` returns seconds (``time.time`` by default); tests pass their own so that
    load prediction and time windows are reproducible.
    """

    def __init__(self, *, health_bound: float = 0.2,
                 approval_roles: dict[RiskLevel, str | None] | None = None,
                 clock: Callable[[], float] = time.time,
                 predictor: LoadPredictor | None = None) -> None:
        self.health_bound = health_bound
        self.approval_roles = dict(DEFAULT_APPROVAL_ROLES)
        for level, role in (approval_roles or {}).items():
            self.approval_roles[RiskLevel.parse(level)] = role
        self.clock = clock
        self.predictor = predictor or LoadPredictor()
        self.recoveries: deque[RecoveryOutcome] = deque(maxlen=1000)
        self._agents: dict[str, Agent] = {}
        self._skills: dict[str, Skill] = {}
        self._by_cap: dict[str, set[str]] = {}
        self._by_label: dict[str, set[str]] = {}
        self._by_region: dict[str, set[str]] = {}
        self._pools: dict[PoolKey, _Pool] = {(): _Pool((), set())}
        self._pools_of: dict[str, list[_Pool]] = {}
        self._unhealthy: set[str] = set()
        self._assignments: dict[str, list[int]] = {}
        self._versions = itertools.count(1)

    # -- registry --------------------------------------------------------------------
    def register_agent(self, agent_id: str, capabilities: Iterable[str], capacity: float = 1.0,
                       *, labels: Iterable[str] = (), region: str | None = None,
                       cost: float = 0.0, windows: Iterable[TimeWindow | str] = (),
                       load: float = 0.0) -> Agent:
        """Add or replace an agent. ``capacity`` is how much load it takes (load/capacity ranks)."""
        if not agent_id:
            raise InputError("an agent needs a non-empty id")
        if capacity <= 0:
            raise InputError(f"agent {agent_id}: capacity must be above 0, got {capacity}",
                             hint="capacity is how many units of work the agent runs at once")
        if agent_id in self._agents:
            self.unregister_agent(agent_id)
        agent = Agent(id=agent_id, capabilities=frozenset(capabilities), capacity=float(capacity),
                      labels=frozenset(labels), region=region, cost=float(cost),
                      windows=tuple(w if isinstance(w, TimeWindow) else TimeWindow.parse(w)
                                    for w in windows),
                      load=float(load))
        self._agents[agent_id] = agent
        for cap in agent.capabilities:
            self._by_cap.setdefault(cap, set()).add(agent_id)
        pools = [p for p in self._pools.values() if agent.capabilities.issuperset(p.key)]
        for pool in pools:
            pool.members.add(agent_id)
        self._pools_of[agent_id] = pools
        for label in agent.labels:
            self._by_label.setdefault(label, set()).add(agent_id)
        if region is not None:
            self._by_region.setdefault(region, set()).add(agent_id)
        self._touch(agent)
        return agent

    def unregister_agent(self, agent_id: str) -> None:
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        for cap in agent.capabilities:
            self._by_cap[cap].discard(agent_id)
        for label in agent.labels:
            self._by_label[label].discard(agent_id)
        if agent.region is not None:
            self._by_region[agent.region].discard(agent_id)
        for pool in self._pools_of.pop(agent_id, []):
            pool.members.discard(agent_id)
            pool.mark(agent_id, False)
        self._unhealthy.discard(agent_id)
        self._assignments.pop(agent_id, None)
        self.predictor.forget(agent_id)

    def register_skill(self, skill_id: str, risk_level: RiskLevel | str | int,
                       required_capabilities: Iterable[str] = (), *,
                       approval_role: str | None = None, paths: Iterable[str] = (),
                       constraints: Constraints | None = None) -> Skill:
        """Add or replace a skill; ``constraints`` apply to every request for it."""
        skill = Skill(id=skill_id, risk_level=RiskLevel.parse(risk_level),
                      required_capabilities=tuple(sorted(set(required_capabilities))),
                      approval_role=approval_role, paths=tuple(paths),
                      constraints=constraints or Constraints())
        self._skills[skill_id] = skill
        return skill

    @property
    def agents(self) -> dict[str, Agent]:
        return self._agents

    @property
    def skills(self) -> dict[str, Skill]:
        return self._skills

    def set_load(self, agent_id: str, load: float) -> None:
        """The load the agent itself reports (units of work running now)."""
        agent = self._agent(agent_id)
        agent.load = max(0.0, float(load))
        self._touch(agent)

    def set_health(self, agent_id: str, error_rate: float) -> None:
        """Recent error rate (0..1, from the metrics engine); above ``health_bound`` ranks last."""
        agent = self._agent(agent_id)
        agent.error_rate = float(error_rate)
        self._touch(agent)

    def predicted_load(self, agent_id: str) -> float:
        agent = self._agent(agent_id)
        return agent.load + self.predictor.pending(agent_id)

    def record_outcome(self, agent_id: str, *, success: bool = True,
                       duration: float | None = None) -> None:
        """Close the agent's oldest open assignment and learn its duration."""
        open_ids = self._assignments.get(agent_id)
        if open_ids:
            self.predictor.complete(open_ids.pop(0), duration)
        elif duration is not None:
            self.predictor.observe(agent_id, duration)
        if agent_id in self._agents:
            self._touch(self._agents[agent_id])

    # -- routing ---------------------------------------------------------------------
    def route(self, request: RoutingRequest) -> RoutingResult:
        """Decide for one request; never raises for an unroutable request, it says why."""
        now = self.clock()
        for agent_id in self.predictor.advance(now):
            if agent_id in self._agents:
                self._touch(self._agents[agent_id])
        skill = self._skills.get(request.skill_id)
        level, notes = self._level(request, skill)
        decision = level.decision
        required = tuple(request.required_capabilities if request.required_capabilities
                         is not None else (skill.required_capabilities if skill else ()))
        role = self._role(level, skill)
        priority = Priority.parse(request.priority)
        base = dict(skill_id=request.skill_id, risk_level=level, approval_role=role,
                    required_capabilities=required, priority=priority)

        missing = tuple(c for c in required if not self._by_cap.get(c))
        if missing:
            return RoutingResult(
                decision=RoutingDecision.HUMAN_INTERVENTION, agent_id=None,
                missing_capabilities=missing, confidence=0.0,
                reason=" ".join([*notes, f"No agent has {_words(missing, 'capability')}; "
                                          f"a person must handle {request.skill_id}."]),
                **base)  # type: ignore[arg-type]
        constraints = (skill.constraints.merged(request.constraints) if skill is not None
                       else request.constraints)
        ranked = self._rank(required, constraints, now)
        if not ranked:
            return RoutingResult(
                decision=RoutingDecision.HUMAN_INTERVENTION, agent_id=None, confidence=0.0,
                reason=" ".join([*notes, self._why_none(required, constraints),
                                 f"A person must handle {request.skill_id}."]),
                **base)  # type: ignore[arg-type]
        chosen = ranked[0]
        fallbacks = tuple(a.id for a in ranked[1:1 + MAX_FALLBACKS])
        unhealthy = tuple(a.id for a in ranked[:1 + MAX_FALLBACKS] if self._is_unhealthy(a))
        ratio = self._ratio(chosen)
        if request.reserve:
            assignment = self.predictor.assign(chosen.id, now)
            self._assignments.setdefault(chosen.id, []).append(assignment)
            self._touch(chosen)
        return RoutingResult(
            decision=decision, agent_id=chosen.id, fallback_agents=fallbacks,
            confidence=self._confidence(chosen, required, ratio),
            reason=self._why(request.skill_id, level, decision, chosen, required, ratio,
                             fallbacks, notes, role),
            unhealthy_agents=unhealthy, **base)  # type: ignore[arg-type]

    def route_batch(self, requests: Sequence[RoutingRequest]) -> list[RoutingResult]:
        """Route urgent requests first (then in the given order); results follow the input order."""
        order = sorted(range(len(requests)),
                       key=lambda i: (-Priority.parse(requests[i].priority), i))
        results: list[RoutingResult | None] = [None] * len(requests)
        for index in order:
            results[index] = self.route(requests[index])
        return [r for r in results if r is not None]

    def execute(self, result: RoutingResult, attempt: AttemptFn, *,
                backoff: Backoff | None = None,
                sleep: Callable[[float], None] = time.sleep) -> RecoveryOutcome:
        """Run ``attempt`` on the assigned agent, then each fallback (with backoff) on failure.

        Each attempt closes that agent's assignment; the outcome is kept in ``recoveries``.
        """
        agents = [a for a in (result.agent_id, *result.fallback_agents) if a]
        outcome = run_with_fallbacks(result.skill_id, agents, attempt,
                                     backoff=backoff or Backoff(), sleep=sleep)
        for step in outcome.attempts:
            if step.agent_id in self._agents:
                self.record_outcome(step.agent_id, success=step.ok)
        self.recoveries.append(outcome)
        return outcome

    # -- internals -------------------------------------------------------------------
    def _agent(self, agent_id: str) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise InputError(f"unknown agent {agent_id!r}",
                             hint="register it first with register_agent()")
        return agent

    def _ratio(self, agent: Agent) -> float:
        return (agent.load + self.predictor.pending(agent.id)) / agent.capacity

    def _is_unhealthy(self, agent: Agent) -> bool:
        return agent.error_rate > self.health_bound

    def _key(self, agent: Agent) -> HeapEntry:
        return (1 if self._is_unhealthy(agent) else 0, self._ratio(agent), agent.id,
                agent.version)

    def _touch(self, agent: Agent) -> None:
        # One counter for all agents: a re-registered agent never matches its old entries.
        agent.version = next(self._versions)
        sick = self._is_unhealthy(agent)
        if sick != (agent.id in self._unhealthy):
            if sick:
                self._unhealthy.add(agent.id)
            else:
                self._unhealthy.discard(agent.id)
            for pool in self._pools_of[agent.id]:
                pool.mark(agent.id, sick)
        entry = self._key(agent)
        for pool in self._pools_of[agent.id]:
            heapq.heappush(pool.heap, entry)
            if len(pool.heap) > 4 * len(pool.members) + 64:
                self._rebuild(pool)

    def _rebuild(self, pool: _Pool) -> None:
        pool.heap = [self._key(self._agents[a]) for a in pool.members]
        heapq.heapify(pool.heap)

    def _pool(self, required: PoolKey) -> _Pool:
        """The pool for exactly ``required``, made on first use (or a single-capability one)."""
        pool = self._pools.get(required)
        if pool is not None:
            return pool
        if len(self._pools) >= _MAX_POOLS:
            required = (min(required, key=lambda c: len(self._by_cap[c])),)
            pool = self._pools.get(required)
            if pool is not None:
                return pool
        members = (set.intersection(*(self._by_cap[c] for c in required)) if required
                   else set(self._agents))
        pool = _Pool(required, members)
        self._pools[required] = pool
        for agent_id in members:
            self._pools_of[agent_id].append(pool)
            if agent_id in self._unhealthy:
                pool.mark(agent_id, True)
        self._rebuild(pool)
        return pool

    def _level(self, request: RoutingRequest, skill: Skill | None) -> tuple[RiskLevel, list[str]]:
        asked = request.risk_level
        assert asked is None or isinstance(asked, RiskLevel)
        if skill is None:
            if asked is None:
                return RiskLevel.R3, [f"Skill {request.skill_id} is not registered, so it is "
                                      f"treated as R3."]
            return asked, [f"Skill {request.skill_id} is not registered; using the requested "
                           f"{asked.name}."]
        if asked is not None and asked < skill.risk_level:
            return skill.risk_level, [f"The requested {asked.name} is below the skill's "
                                      f"{skill.risk_level.name}; the skill's level applies."]
        if asked is not None and asked > skill.risk_level:
            return asked, [f"Risk raised from {skill.risk_level.name} to {asked.name} "
                           f"by the request."]
        return skill.risk_level, []

    def _role(self, level: RiskLevel, skill: Skill | None) -> str | None:
        if level == RiskLevel.R2 and skill is not None and skill.approval_role:
            return skill.approval_role
        return self.approval_roles.get(level)

    def _allowed(self, agent: Agent, required: tuple[str, ...], constraints: Constraints,
                 moment: Callable[[], datetime]) -> bool:
        if not agent.capabilities.issuperset(required):
            return False
        if constraints.empty and not agent.windows:
            return True
        if agent.id in constraints.exclude_agents:
            return False
        if constraints.labels and not agent.labels.issuperset(constraints.labels):
            return False
        if constraints.region is not None and agent.region != constraints.region:
            return False
        if constraints.max_cost is not None and agent.cost > constraints.max_cost:
            return False
        return not agent.windows or agent.available_at(moment())

    def _rank(self, required: tuple[str, ...], constraints: Constraints,
              now: float) -> list[Agent]:
        """The best agents first: healthy before unhealthy, then load/capacity, then id."""
        cached: list[datetime] = []

        def moment() -> datetime:
            if not cached:
                cached.append(constraints.at or datetime.fromtimestamp(now, UTC))
            return cached[0]

        want = 1 + MAX_FALLBACKS
        narrow = [self._by_label.get(label, set()) for label in constraints.labels]
        if constraints.region is not None:
            narrow.append(self._by_region.get(constraints.region, set()))
        smallest = min(narrow, key=len) if narrow else None
        if smallest is not None and len(smallest) <= _SMALL:
            return self._rank_set(smallest, required, constraints, moment, want)
        pool = self._pool(required)
        # Members of the exact pool have every capability: without constraints only an
        # agent's own time windows can rule it out.
        plain = constraints.empty and pool.key == required
        heap = pool.heap
        agents = self._agents
        found: list[Agent] = []
        popped: list[HeapEntry] = []
        try:
            while heap and len(found) < want:
                if len(popped) >= _WALK_LIMIT:
                    return self._rank_set(pool.members, required, constraints, moment, want)
                entry = heapq.heappop(heap)
                agent = agents.get(entry[2])
                if agent is None or agent.version != entry[3]:
                    continue  # stale: a newer entry for this agent is further down
                popped.append(entry)
                if (plain and not agent.windows) or self._allowed(agent, required, constraints,
                                                                  moment):
                    found.append(agent)
        finally:
            for entry in popped:
                heapq.heappush(heap, entry)
        return found

    def _rank_set(self, pool: Iterable[str], required: tuple[str, ...],
                  constraints: Constraints, moment: Callable[[], datetime],
                  want: int) -> list[Agent]:
        agents = [self._agents[a] for a in pool]
        allowed = [a for a in agents if self._allowed(a, required, constraints, moment)]
        return heapq.nsmallest(want, allowed, key=self._key)

    def _why_none(self, required: tuple[str, ...], constraints: Constraints) -> str:
        capable = set(self._agents) if not required else set.intersection(
            *(self._by_cap[c] for c in required))
        if not capable:
            return f"No single agent has all of {', '.join(required)}."
        limits = []
        if constraints.labels:
            limits.append(f"labels {', '.join(sorted(constraints.labels))}")
        if constraints.region is not None:
            limits.append(f"region {constraints.region}")
        if constraints.exclude_agents:
            limits.append(f"excluding {', '.join(sorted(constraints.exclude_agents))}")
        if constraints.max_cost is not None:
            limits.append(f"cost at most {constraints.max_cost:g}")
        limits.append("availability at "
                      + (constraints.at.isoformat() if constraints.at else "the current time"))
        return (f"{len(capable)} agent(s) have the capabilities, but none meets the "
                f"constraints ({'; '.join(limits)}).")

    def _confidence(self, agent: Agent, required: tuple[str, ...], ratio: float) -> float:
        """1.0 for a full capability match on a healthy agent with room; less otherwise."""
        score = 1.0 if required else 0.5
        if self._is_unhealthy(agent):
            score *= 0.6
        if ratio >= 1.0:
            score *= 0.8
        return round(score, 3)

    def _why(self, skill_id: str, level: RiskLevel, decision: RoutingDecision, agent: Agent,
             required: tuple[str, ...], ratio: float, fallbacks: tuple[str, ...],
             notes: list[str], role: str | None) -> str:
        parts = list(notes)
        parts.append(f"{skill_id} is {level.name}, so the decision is {decision.value}.")
        has = f"has {', '.join(required)}" if required else "needs no capability"
        parts.append(f"{agent.id} {has} and is the least loaded capable agent "
                     f"({ratio:.0%} of capacity).")
        if ratio >= 1.0:
            parts.append("Every capable agent is at or over capacity.")
        if self._is_unhealthy(agent):
            parts.append(f"{agent.id}'s error rate {agent.error_rate:.0%} is above the "
                         f"{self.health_bound:.0%} bound; no healthy capable agent was free.")
        skipped = self._unhealthy_capable(required, agent.id)
        if skipped and not self._is_unhealthy(agent):
            parts.append(f"Ranked last for an error rate above {self.health_bound:.0%}: "
                         f"{', '.join(skipped)}.")
        if fallbacks:
            parts.append(f"Fallbacks: {', '.join(fallbacks)}.")
        if role and decision == RoutingDecision.APPROVAL_REQUIRED:
            parts.append(f"Needs approval by {role}.")
        if role and decision == RoutingDecision.HUMAN_INTERVENTION:
            parts.append(f"Needs a human decision by {role}.")
        return " ".join(parts)

    def _unhealthy_capable(self, required: tuple[str, ...], chosen: str) -> list[str]:
        pool = self._pools.get(required)
        if pool is not None:
            names: Iterable[str] = pool.first_unhealthy(5)
        else:
            names = heapq.nsmallest(6, (a for a in self._unhealthy
                                        if self._agents[a].capabilities.issuperset(required)))
        return [a for a in names if a != chosen][:5]


def _words(items: Sequence[str], noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{noun if len(items) == 1 else plural} {', '.join(items)}"
