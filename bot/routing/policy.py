"""From the ``routing`` config section to a ready ``SkillRouter`` and the PR policy.

The JSON Schema already checked shapes; what only makes sense across entries is checked
here (duplicate ids, roles nobody defined, globs that cannot compile), with the key path
and the fix in the message.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ConfigError, InputError
from bot.routing.globs import PathScope
from bot.routing.model import Constraints, RiskLevel, Skill
from bot.routing.router import SkillRouter

COMMITTEE = "committee"
APPROVAL_MANAGER = "approval_manager"


@dataclass(frozen=True)
class RoleMembers:
    users: frozenset[str] = frozenset()  # lower-case logins
    teams: tuple[str, ...] = ()  # "org/slug"


@dataclass
class RoutingPolicy:
    """Everything the PR gate needs besides GitHub's facts."""

    router: SkillRouter
    scopes: list[tuple[Skill, PathScope]]
    roles: dict[str, RoleMembers]
    approval_roles: dict[RiskLevel, str]
    default_risk: RiskLevel = RiskLevel.R0
    label_prefix: str = "risk: "
    approvals_survive_push: bool = False
    check_name: str = "cvf/routing"
    descriptions: dict[str, str] = field(default_factory=dict)

    def role_for(self, level: RiskLevel, skill: Skill | None = None) -> str | None:
        if level == RiskLevel.R2 and skill is not None and skill.approval_role:
            return skill.approval_role
        return self.approval_roles.get(level)


def build_policy(section: Mapping[str, Any], *, committee: Mapping[str, Any] | None = None,
                 source: str = ".github/cvf.yml",
                 registries: Sequence[tuple[str, Mapping[str, Any]]] = (),
                 clock: Callable[[], float] = time.time) -> RoutingPolicy:
    """Build the router and policy from a validated ``routing`` section (defaults filled)
    plus the parsed registry files it names (``registries``: (file name, data) pairs)."""
    where = f"{source}: routing"
    roles = _roles(section.get("roles") or {}, committee or {})
    approval_roles = {RiskLevel.R2: str(section.get("approval_roles", {}).get(
                          "R2", "approval_manager")),
                      RiskLevel.R3: str(section.get("approval_roles", {}).get("R3", COMMITTEE))}
    for level, role in approval_roles.items():
        _known_role(role, roles, f"{where}.approval_roles.{level.name}")
    router = SkillRouter(health_bound=float(section.get("health_bound", 0.2)),
                         approval_roles=dict(approval_roles), clock=clock)

    agents = [(f"{where}.agents.{i}", a) for i, a in enumerate(section.get("agents") or [])]
    skills = [(f"{where}.skills.{i}", s) for i, s in enumerate(section.get("skills") or [])]
    for name, data in registries:
        agents += [(f"{name}: agents.{i}", a) for i, a in enumerate(data.get("agents") or [])]
        skills += [(f"{name}: skills.{i}", s) for i, s in enumerate(data.get("skills") or [])]

    seen: dict[str, str] = {}
    for key, agent in agents:
        agent_id = _claim_id("agent", key, agent, seen)
        try:
            router.register_agent(agent_id, agent.get("capabilities", []),
                                  capacity=float(agent.get("capacity", 1)),
                                  labels=agent.get("labels", []), region=agent.get("region"),
                                  cost=float(agent.get("cost", 0)),
                                  windows=agent.get("windows", []))
        except InputError as exc:
            raise ConfigError(exc.message, where=key, hint=exc.hint) from None

    scopes: list[tuple[Skill, PathScope]] = []
    descriptions: dict[str, str] = {}
    skill_at: dict[str, str] = {}
    for key, entry in skills:
        skill_id = _claim_id("skill", key, entry, skill_at)
        approver = entry.get("approver")
        if approver is not None:
            _known_role(str(approver), roles, f"{key}.approver")
        limits = Constraints.of(labels=entry.get("agent_labels", []),
                                region=entry.get("region"),
                                max_cost=entry.get("max_cost"))
        skill = router.register_skill(skill_id, entry["risk_level"],
                                      entry.get("required_capabilities", []),
                                      approval_role=approver, paths=entry.get("paths", []),
                                      constraints=limits)
        try:
            scope = PathScope(skill.paths)
        except InputError as exc:
            raise ConfigError(exc.message, where=f"{key}.paths", hint=exc.hint) from None
        scopes.append((skill, scope))
        if entry.get("description"):
            descriptions[skill_id] = str(entry["description"])

    return RoutingPolicy(
        router=router, scopes=scopes, roles=roles, approval_roles=approval_roles,
        default_risk=RiskLevel.parse(section.get("default_risk", "R0")),
        label_prefix=str(section.get("risk_label_prefix", "risk: ")),
        approvals_survive_push=bool(section.get("approvals_survive_push", False)),
        check_name=str(section.get("check_name", "cvf/routing")),
        descriptions=descriptions)


def build_router(section: Mapping[str, Any], *,
                 clock: Callable[[], float] = time.time) -> SkillRouter:
    """Just the router, for callers that route skills without a pull request."""
    return build_policy(section, clock=clock).router


def _claim_id(kind: str, key: str, entry: Mapping[str, Any], seen: dict[str, str]) -> str:
    """The entry's id, refused if an earlier entry (``seen``: id -> where) has it."""
    found = str(entry["id"])
    if found in seen:
        raise ConfigError(f"{kind} id '{found}' is used twice (also {seen[found]})",
                          where=f"{key}.id", hint=f"give every {kind} its own id")
    seen[found] = _short(key)
    return found


def _short(key: str) -> str:
    """``.github/cvf.yml: routing.agents.0`` -> ``agents.0``, for "also ..." notes."""
    return key.rsplit(": ", 1)[-1].removeprefix("routing.")


def _roles(configured: Mapping[str, Any], committee: Mapping[str, Any]) -> dict[str, RoleMembers]:
    # The default roles exist even when empty, so a config without them stays valid; a
    # gate needing an empty role says so in its report.
    roles = {APPROVAL_MANAGER: RoleMembers(), COMMITTEE: _members(committee)}
    for name, members in configured.items():
        roles[str(name)] = _members(members or {})
    return roles


def _members(data: Mapping[str, Any]) -> RoleMembers:
    return RoleMembers(users=frozenset(str(u).lower() for u in data.get("users", [])),
                       teams=tuple(str(t) for t in data.get("teams", [])))


def _known_role(role: str, roles: Mapping[str, RoleMembers], where: str) -> None:
    if role in roles:
        return
    close = difflib.get_close_matches(role, list(roles), n=1)
    hint = (f"did you mean '{close[0]}'?" if close else
            f"define it under routing.roles, e.g. `{role}: {{users: [alice]}}`")
    raise ConfigError(f"unknown role '{role}'", where=where, hint=hint)
