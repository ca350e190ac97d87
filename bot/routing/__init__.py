"""Skill routing (R0–R3): which agent runs a skill, and what must happen first.

Public API::

    from bot.routing import SkillRouter, RoutingRequest, RoutingResult, RiskLevel, RoutingDecision

    router = SkillRouter()
    router.register_agent("executor-1", ["deploy", "execute"], capacity=4)
    router.register_skill("deploy-prod", RiskLevel.R2, ["deploy"])
    result = router.route(RoutingRequest(skill_id="deploy-prod"))
    result.decision      # RoutingDecision.APPROVAL_REQUIRED
    result.agent_id      # "executor-1"
    result.approval_role # "approval_manager"

More of the API:

- ``register_agent(agent_id, capabilities, capacity=1.0, *, labels=(), region=None,
  cost=0.0, windows=("mon-fri 08:00-18:00",), load=0.0)``; ``unregister_agent(id)``.
- ``register_skill(skill_id, risk_level, required_capabilities=(), *, approval_role=None,
  paths=(), constraints=None)``: ``approval_role`` replaces the R2 role for this skill.
- ``set_load(agent_id, load)`` (reported load) and ``set_health(agent_id, error_rate)``
  (0..1; above ``SkillRouter(health_bound=0.2)`` the agent ranks after healthy ones).
- ``route(request)`` reserves one unit of predicted load on the chosen agent (pass
  ``reserve=False`` to preview); the unit ends with ``record_outcome(agent_id,
  duration=...)`` or after the agent's learned expected duration.
- ``route_batch(requests)``: urgent first, results in input order.
- ``RoutingRequest(constraints=Constraints.of(labels=..., region=..., exclude_agents=...,
  max_cost=..., at=datetime))``.
- ``execute(result, attempt, backoff=Backoff(base=0.5, factor=2, maximum=30))``: run on
  the agent, then each fallback after a growing pause; the ``RecoveryOutcome`` lists
  every attempt.
- Ranking: capable agents only; healthy before unhealthy, then load / capacity, then id.
  No capable agent gives ``agent_id=None``, ``missing_capabilities`` and a reason.

Pure: no network, no environment; the clock is injectable.
"""

from bot.routing.model import (
    Constraints,
    Priority,
    RiskLevel,
    RoutingDecision,
    RoutingRequest,
    RoutingResult,
    TimeWindow,
)
from bot.routing.recovery import Backoff, RecoveryOutcome
from bot.routing.router import SkillRouter

__all__ = [
    "Backoff",
    "Constraints",
    "Priority",
    "RecoveryOutcome",
    "RiskLevel",
    "RoutingDecision",
    "RoutingRequest",
    "RoutingResult",
    "SkillRouter",
    "TimeWindow",
]
