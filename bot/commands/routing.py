"""``cvf route``: preview a routing decision for a skill or a pull request, from the shell."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from bot.cli import CliState, pass_state
from bot.config import Config
from bot.errors import InputError
from bot.github.port import GitHubPort
from bot.routing import Constraints, RoutingRequest, RoutingResult, SkillRouter
from bot.routing.model import Priority, RiskLevel
from bot.routing.policy import RoutingPolicy, build_policy
from bot.routing.registry import load_registries


def register(cli: click.Group) -> None:
    @cli.command("route")
    @click.option("--skill", "skill_id", metavar="ID", help="Skill to route (from routing.skills).")
    @click.option("--batch", "batch_path", metavar="FILE", type=click.Path(dir_okay=False),
                  help="Route a JSON list of requests ({skill, risk, capabilities, priority, "
                       "labels, region, exclude, max_cost}) urgent-first, load carried over.")
    @click.option("--pr", "pr_number", type=int, metavar="N",
                  help="Evaluate pull request N as the cvf/routing gate would (reads GitHub, "
                       "writes nothing).")
    @click.option("--risk", metavar="R0..R3", help="Raise the risk level for this request.")
    @click.option("--capability", "capabilities", multiple=True, metavar="NAME",
                  help="Required capability (repeatable); replaces the skill's own list.")
    @click.option("--priority", type=click.Choice(["low", "normal", "high", "urgent"]),
                  default="normal", show_default=True,
                  help="Request priority (orders a --batch; shown in the result).")
    @click.option("--label", "labels", multiple=True, metavar="LABEL",
                  help="Only agents with this label (repeatable).")
    @click.option("--region", metavar="REGION", help="Only agents in this region.")
    @click.option("--exclude", "excluded", multiple=True, metavar="AGENT",
                  help="Never choose this agent (repeatable).")
    @click.option("--max-cost", type=float, metavar="COST",
                  help="Only agents costing at most this.")
    @click.option("--health/--no-health", default=True, show_default=True,
                  help="Rank agents by their error rate in the metrics store (if it exists).")
    @click.option("--repo", metavar="OWNER/NAME",
                  help="Repository for --pr (default: $GITHUB_REPOSITORY).")
    @click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                  show_default=True)
    @click.option("--output", "output", metavar="FILE", type=click.Path(dir_okay=False),
                  help="Also write the decision record (JSON) to FILE.")
    @click.option("--store", "to_store", is_flag=True,
                  help="Also append the decision record to the metrics store "
                       "(metrics.store).")
    @pass_state
    def route_command(state: CliState, skill_id: str | None, batch_path: str | None,
                      pr_number: int | None,
                      risk: str | None, capabilities: tuple[str, ...], priority: str,
                      labels: tuple[str, ...], region: str | None, excluded: tuple[str, ...],
                      max_cost: float | None, health: bool, repo: str | None, fmt: str,
                      output: str | None, to_store: bool) -> None:
        """Preview which agent runs a skill and what must happen first (R0–R3).

        \b
        cvf route --skill deploy-prod
        cvf route --skill deploy-prod --risk R3 --format json
        cvf route --pr 42 --repo my-org/my-repo
        """
        if sum(x is not None for x in (skill_id, pr_number, batch_path)) != 1:
            raise InputError("give exactly one of --skill ID, --batch FILE or --pr N",
                             hint="e.g. `cvf route --skill deploy-prod` or `cvf route --pr 42`")
        if batch_path is not None:
            _route_batch(state, batch_path, fmt, health)
            return
        if pr_number is not None:
            _route_pull(state, pr_number, repo, fmt, output, to_store)
            return
        assert skill_id is not None
        policy = _policy(state.config)
        if health:
            apply_store_health(policy.router, state.config)
        _check_skill(policy, skill_id, capabilities)
        request = RoutingRequest(
            skill_id=skill_id, risk_level=RiskLevel.parse(risk) if risk else None,
            required_capabilities=list(capabilities) or None,
            priority=Priority.parse(priority), reserve=False,
            constraints=Constraints.of(labels=labels, region=region, exclude_agents=excluded,
                                       max_cost=max_cost))
        result = policy.router.route(request)
        record = _skill_record(result, policy)
        if output:
            _write_json(output, record)
        if to_store:
            append_to_store(state.config, record)
        if fmt == "json":
            click.echo(json.dumps(result.to_dict(), indent=2))
        else:
            click.echo(format_result(result))


_BATCH_KEYS = {"skill", "risk", "capabilities", "priority", "labels", "region", "exclude",
               "max_cost"}


def read_batch(path: str) -> list[RoutingRequest]:
    """A JSON list of request objects; each problem names the item and the key."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{path} is not JSON: {exc}", where=path) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON list of requests", where=path,
                         hint='e.g. [{"skill": "deploy-prod", "priority": "urgent"}]')
    requests = []
    for index, item in enumerate(data):
        where = f"{path}: [{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("skill"), str):
            raise InputError("each request needs a \"skill\" string", where=where)
        unknown = sorted(set(item) - _BATCH_KEYS)
        if unknown:
            raise InputError(f"unknown key {unknown[0]!r}", where=where,
                             hint=f"known keys: {', '.join(sorted(_BATCH_KEYS))}")
        try:
            requests.append(RoutingRequest(
                skill_id=item["skill"], risk_level=item.get("risk"),
                required_capabilities=item.get("capabilities"),
                priority=item.get("priority", "normal"),
                constraints=Constraints.of(labels=item.get("labels", []),
                                           region=item.get("region"),
                                           exclude_agents=item.get("exclude", []),
                                           max_cost=item.get("max_cost"))))
        except InputError as exc:
            raise InputError(exc.message, where=where, hint=exc.hint) from None
    return requests


def _route_batch(state: CliState, path: str, fmt: str, health: bool) -> None:
    policy = _policy(state.config)
    if health:
        apply_store_health(policy.router, state.config)
    requests = read_batch(path)
    for request in requests:
        _check_skill(policy, request.skill_id, tuple(request.required_capabilities or ()))
    results = policy.router.route_batch(requests)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        click.echo("\n\n".join(format_result(r) for r in results))


def format_result(result: RoutingResult) -> str:
    lines = [f"{result.skill_id}: {result.risk_level.name} -> {result.decision.value}"
             + (f" ({result.priority.name.lower()})" if result.priority != Priority.NORMAL
                else ""),
             f"  agent:          {result.agent_id or 'none'}",
             f"  fallbacks:      {', '.join(result.fallback_agents) or '-'}",
             f"  approval role:  {result.approval_role or '-'}",
             f"  confidence:     {result.confidence:.2f}"]
    if result.missing_capabilities:
        lines.append(f"  missing:        {', '.join(result.missing_capabilities)}")
    lines.append(f"  why:            {result.reason}")
    return "\n".join(lines)


def apply_store_health(router: SkillRouter, config: Config) -> int:
    """Feed agents' last-hour error rates from the metrics store, when there is one."""
    if not router.agents:
        return 0
    from bot.handlers.metrics import store_health

    applied = 0
    for agent_id, error_rate in store_health(config).items():
        if agent_id in router.agents:
            router.set_health(agent_id, error_rate)
            applied += 1
    return applied


def append_to_store(config: Config, record: Mapping[str, Any]) -> None:
    """Append one record to the metrics store (created on first use)."""
    from bot.handlers.metrics import store_for

    store = store_for(config)
    try:
        store.add_many([dict(record)], default_source="cvf-route")
    finally:
        store.close()


def _policy(config: Config) -> RoutingPolicy:
    section = config.section("routing")

    def read(name: str) -> str | None:
        path = Path(config.root) / name
        try:
            return path.read_text("utf-8") if path.is_file() else None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read registry file {name}: {exc}",
                             hint="save it as UTF-8 text") from None

    return build_policy(section, committee=config.rfc.get("committee"), source=config.path,
                        registries=load_registries(section, read, source=config.path))


def _check_skill(policy: RoutingPolicy, skill_id: str, capabilities: tuple[str, ...]) -> None:
    if skill_id in policy.router.skills or capabilities:
        return
    known = sorted(policy.router.skills)
    close = difflib.get_close_matches(skill_id, known, n=1)
    if close:
        hint = f"did you mean '{close[0]}'?"
    elif known:
        hint = f"known skills: {', '.join(known[:20])}"
    else:
        hint = "add skills under routing.skills in .github/cvf.yml"
    raise InputError(f"unknown skill '{skill_id}'",
                     hint=f"{hint}; --capability NAME routes a skill that is not configured")


def _skill_record(result: RoutingResult, policy: RoutingPolicy) -> dict[str, Any]:
    """The routing decision as a decision record (``bot.metrics.facts``): a preview is
    no execution, and no agent when none could be chosen."""
    from datetime import UTC, datetime

    from bot.metrics.facts import decision_record

    now = datetime.now(UTC)
    needs = result.risk_level >= RiskLevel.R2
    role = policy.role_for(result.risk_level, policy.router.skills.get(result.skill_id)) \
        if needs else None
    members = policy.roles.get(role) if role else None
    record = decision_record(
        repo="", number=None, head_sha="", url=None, skill=result.skill_id,
        risk_level=result.risk_level.name, decision=result.decision.value,
        agent=result.agent_id or None, fallbacks=list(result.fallback_agents),
        approval_role=role,
        approvers=[*sorted(members.users), *members.teams] if members else [],
        gate="pending" if needs else ("passed" if result.routed else "blocked"),
        timestamp=now, source="cvf-route-preview",
        key=f"preview:{result.skill_id}@{now.isoformat()}")
    return {**record, "routing": result.to_dict()}


def _write_json(path: str, data: Mapping[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}",
                         hint="choose a writable file") from None


def port_for(state: CliState, repo: str) -> GitHubPort:
    """A read-only (dry-run) adapter for ``repo``; tests replace this."""
    from bot.github.factory import factory_from_config

    return factory_from_config(state.config)(repo, None, dry_run=True)


def _route_pull(state: CliState, number: int, repo: str | None, fmt: str,
                output: str | None, to_store: bool) -> None:
    from bot.handlers.routing import preview_pull

    repo = repo or os.environ.get("GITHUB_REPOSITORY", "")
    if not repo or "/" not in repo:
        raise InputError("which repository? --pr needs one",
                         hint="pass --repo owner/name or set GITHUB_REPOSITORY")
    evaluation, report, record = preview_pull(state.config, port_for(state, repo), number)
    if output:
        _write_json(output, record)
    if to_store:
        append_to_store(state.config, record)
    if fmt == "json":
        gate = evaluation.gate
        click.echo(json.dumps({
            "pull_request": number, "head_sha": evaluation.facts.head_sha,
            "risk_level": evaluation.risk.name, "decision": evaluation.decision.value,
            "skills": [{"skill": t.skill.id, "paths": list(t.paths), **t.result.to_dict()}
                       for t in evaluation.touched],
            "unscoped_paths": evaluation.unscoped, "required_roles": evaluation.required_roles,
            "approvers": [a.login for a in evaluation.approvers],
            "check": {"status": gate.status, "conclusion": gate.conclusion,
                      "title": gate.title, "summary": gate.summary},
            "record": record}, indent=2))
    else:
        lines = [line for line in report.splitlines() if not line.startswith("<!-- cvf:")]
        click.echo("\n".join(lines).strip())
