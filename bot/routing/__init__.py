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
