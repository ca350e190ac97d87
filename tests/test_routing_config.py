"""The `routing` section: schema errors with file/line/key, cross-entry errors with the
key path, and the router and PR policy built from it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.config import parse_config
from bot.errors import ConfigError
from bot.routing import RiskLevel, RoutingDecision, RoutingRequest
from bot.routing.globs import PathScope
from bot.routing.policy import build_policy

GOOD = """
routing:
  agents:
    - {id: executor-1, capabilities: [deploy, execute], capacity: 4, labels: [trusted],
       region: eu, cost: 2, windows: ["mon-fri 08:00-18:00"]}
  skills:
    - {id: deploy-prod, risk_level: R2, required_capabilities: [deploy], paths: [deploy/],
       approver: release}
    - {id: docs, risk_level: R0, paths: ["docs/**/*.md"]}
  roles:
    release: {users: [Alice], teams: [my-org/release]}
  approval_roles: {R2: release}
  health_bound: 0.1
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def policy_error(text: str) -> str:
    config = parse_config(text)
    with pytest.raises(ConfigError) as info:
        build_policy(config.section("routing"), committee=config.rfc["committee"])
    return str(info.value)


def test_defaults_when_the_section_is_absent():
    section = parse_config("").section("routing")
    assert section["approval_roles"] == {"R2": "approval_manager", "R3": "committee"}
    assert section["default_risk"] == "R0" and section["check_name"] == "cvf/routing"
    assert section["approvals_survive_push"] is False
    policy = build_policy(section)
    assert policy.router.agents == {} and policy.scopes == []


def test_good_config_builds_router_and_policy():
    config = parse_config(GOOD)
    policy = build_policy(config.section("routing"), committee={"users": ["Chair"]})
    agent = policy.router.agents["executor-1"]
    assert (agent.capacity, agent.region, agent.cost) == (4, "eu", 2)
    assert policy.router.health_bound == 0.1
    assert policy.roles["release"].users == {"alice"}
    assert policy.roles["committee"].users == {"chair"}
    # executor-1 works mon-fri 08:00-18:00: route on a Wednesday at 10:00 UTC.
    policy.router.clock = lambda: datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()
    result = policy.router.route(RoutingRequest(skill_id="deploy-prod", reserve=False))
    assert result.decision == RoutingDecision.APPROVAL_REQUIRED
    assert result.approval_role == "release"
    skill, scope = policy.scopes[0]
    assert skill.risk_level == RiskLevel.R2 and scope.matches("deploy/k8s/prod.yml")


@pytest.mark.parametrize(("text", "expected"), [
    ("routing:\n  skills:\n    - {id: s, risk_level: R5}\n",
     '.github/cvf.yml:3: routing.skills.0.risk_level: expected one of "R0", "R1", "R2", '
     '"R3", got "R5"'),
    ("routing:\n  agents:\n    - {id: a, capabilities: [x], capacity: 0}\n",
     ".github/cvf.yml:3: routing.agents.0.capacity: 0 is less than or equal to the minimum "
     "of 0"),
    ("routing:\n  agents:\n    - {id: a, capabilities: [x], windows: [weekdays]}\n",
     '.github/cvf.yml:3: routing.agents.0.windows.0: expected a time window like '
     '"mon-fri 08:00-18:00", got "weekdays"'),
    ("routing:\n  agent:\n    - {id: a}\n",
     ".github/cvf.yml:2: routing.agent: unknown key 'agent'; did you mean 'agents'?"),
    ("routing:\n  roles:\n    release: {users: ['not a login']}\n",
     '.github/cvf.yml:3: routing.roles.release.users.0: expected a GitHub login, '
     'got "not a login"'),
    ("routing:\n  health_bound: 2\n",
     ".github/cvf.yml:2: routing.health_bound: 2 is greater than the maximum of 1"),
])
def test_schema_errors_name_file_line_and_key(text, expected):
    assert expected in problems(text)


def test_duplicate_ids_are_errors_naming_both():
    text = ("routing:\n  agents:\n    - {id: a, capabilities: [x]}\n"
            "    - {id: a, capabilities: [y]}\n")
    assert policy_error(text) == (".github/cvf.yml: routing.agents.1.id: agent id 'a' is used "
                                  "twice (also agents.0) (hint: give every agent its own id)")
    text = ("routing:\n  skills:\n    - {id: s, risk_level: R0}\n"
            "    - {id: s, risk_level: R1}\n")
    assert "routing.skills.1.id: skill id 's' is used twice" in policy_error(text)


def test_unknown_roles_suggest_the_close_one():
    text = ("routing:\n  roles:\n    release: {users: [a]}\n"
            "  skills:\n    - {id: s, risk_level: R2, approver: relase}\n")
    assert policy_error(text) == (".github/cvf.yml: routing.skills.0.approver: unknown role "
                                  "'relase' (hint: did you mean 'release'?)")
    text = "routing:\n  approval_roles: {R2: managers}\n"
    assert "routing.approval_roles.R2: unknown role 'managers'" in policy_error(text)
    assert "define it under routing.roles" in policy_error(text)


def test_bad_glob_is_a_config_error():
    text = "routing:\n  skills:\n    - {id: s, risk_level: R0, paths: ['src/[abc']}\n"
    assert "routing.skills.0.paths: unclosed \"[\"" in policy_error(text)


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("deploy/", "deploy/a/b.yml", True),
    ("deploy/", "deployment/a", False),
    ("*.tf", "main.tf", True),
    ("*.tf", "infra/main.tf", False),
    ("**/*.tf", "infra/main.tf", True),
    ("**/*.tf", "main.tf", True),
    ("src/*.py", "src/x/a.py", False),
    ("/docs/**", "docs/a/b", True),
    ("docs/[!a]*.md", "docs/b.md", True),
    ("docs/[!a]*.md", "docs/a.md", False),
    ("file?.txt", "file1.txt", True),
])
def test_path_globs(pattern, path, matches):
    assert PathScope([pattern]).matches(path) is matches


def test_registry_files_add_agents_and_skills_with_located_errors():
    from bot.routing.registry import load_registries, parse_registry

    section = parse_config("routing:\n  registry_files: [fleet.yml]\n"
                           "  agents:\n    - {id: a, capabilities: [x]}\n").section("routing")
    files = {"fleet.yml": "agents:\n  - {id: b, capabilities: [y]}\n"
                          "skills:\n  - {id: s, risk_level: R1, required_capabilities: [y]}\n"}
    policy = build_policy(section, registries=load_registries(section, files.get))
    assert sorted(policy.router.agents) == ["a", "b"]
    assert policy.router.route(RoutingRequest(skill_id="s")).agent_id == "b"

    with pytest.raises(ConfigError) as info:
        parse_registry("agents:\n  - {id: b, capabilities: [y]}\n  - {id: c}\n",
                       source="fleet.yml")
    assert info.value.problems == [
        "fleet.yml:3: agents.1: 'capabilities' is a required property"]
    with pytest.raises(ConfigError, match="routing.registry_files.0: registry file fleet.yml "
                                          "not found"):
        load_registries(section, {}.get)
    dup = {"fleet.yml": "agents:\n  - {id: a, capabilities: [y]}\n"}
    with pytest.raises(ConfigError, match=r"fleet.yml: agents.0.id: agent id 'a' is used "
                                          r"twice \(also agents.0\)"):
        build_policy(section, registries=load_registries(section, dup.get))


def test_skill_constraints_from_config():
    config = parse_config(
        "routing:\n  agents:\n"
        "    - {id: a, capabilities: [x], region: eu, labels: [pci], cost: 3}\n"
        "    - {id: b, capabilities: [x], region: us, labels: [pci], cost: 1}\n"
        "  skills:\n"
        "    - {id: pay, risk_level: R1, required_capabilities: [x], agent_labels: [pci],\n"
        "       region: eu, max_cost: 5}\n")
    policy = build_policy(config.section("routing"))
    assert policy.router.route(RoutingRequest(skill_id="pay")).agent_id == "a"


@pytest.mark.parametrize(("label", "level"), [
    ("risk: R2", RiskLevel.R2), ("Risk:r3", RiskLevel.R3), ("risk:  R0 ", RiskLevel.R0),
    ("risk: high", None), ("risky", None), ("bug", None)])
def test_risk_labels(label, level):
    from bot.routing.pulls import risk_from_label

    assert risk_from_label(label, "risk: ") == level
