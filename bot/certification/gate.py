"""Certification as a gate: "does this login hold level X?".

The RFC and routing code ask exactly this. A level counts as held when the person has
a valid certificate (issued, not expired, not revoked) for that level or for any level
that requires it; certification levels are cumulative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.certification.program import Program
from bot.certification.registry import Registry


def holds_level(login: str, level: str | None, *, program: Program, registry: Registry,
                now: datetime) -> bool:
    """True when ``login`` holds ``level`` or a level above it at ``now``.

    ``level=None`` means "no requirement" and is always True; an unknown level is never
    held (a typo in config must not open a gate).
    """
    if level is None:
        return True
    if not program.has_level(level):
        return False
    return level in program.covered_by(registry.held_levels(login, now))


@dataclass(frozen=True)
class LevelGate:
    """The gate settings from config bound to the registry, for one event.

    ``section`` is ``config.section("certification")``.
    """

    program: Program
    registry: Registry
    section: dict[str, Any]
    now: datetime

    def holds(self, login: str, level: str | None) -> bool:
        return holds_level(login, level, program=self.program, registry=self.registry,
                           now=self.now)

    def vote_level(self, rfc_type: str) -> str | None:
        """Level needed for a binding vote on an RFC of ``rfc_type``, or None."""
        rules = self.section["gates"]["rfc_votes"]
        return rules.get(rfc_type, rules.get("default"))

    def approval_level(self, risk_level: str) -> str | None:
        """Level needed to approve a routing decision at ``risk_level`` ("R2"), or None."""
        return self.section["gates"]["routing_approvals"].get(str(risk_level).upper())

    def may_vote(self, login: str, rfc_type: str) -> bool:
        return self.holds(login, self.vote_level(rfc_type))

    def may_approve(self, login: str, risk_level: str) -> bool:
        return self.holds(login, self.approval_level(risk_level))

    def why_not(self, login: str, needed: str | None) -> str:
        if needed is None or self.holds(login, needed):
            return ""
        return (f"{login} does not hold the {needed} certification (or a level above it); "
                f"see certification/README.md")
