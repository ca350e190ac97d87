"""``cvf action``: the GitHub Action's entry point (the ``Run`` step of action.yml).

The action passes its inputs as ``CVF_*`` environment variables (never pasted into shell
code, so an input cannot inject a command). This module turns them into one of the real
commands, run in-process, and reports the result the way a workflow reads it: outputs in
``$GITHUB_OUTPUT``, a readable job summary, ``::error``/``::warning`` annotations on the
right file and line, and a JSON report file. The exit code is non-zero only when the
governance rule says the pull request must not merge, or when the setup is wrong
(configuration, inputs, token permissions) — a problem the workflow's author must fix.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click

from bot.actionio import add_summary, annotation, set_output
from bot.cli import CliState, pass_state
from bot.config import DEFAULT_PATH, Config
from bot.errors import ConfigError, CvfError, InputError
from bot.events import Event, load_handlers, utcnow
from bot.github.delivery import Outcome
from bot.github.factory import GitHubFactory, factory_from_config
from bot.github.port import GitHubError, GitHubPort, PermissionDenied
from bot.markdown import escape_table_cell
from bot.templating import render

COMMANDS = ("handle", "lint", "route", "metrics", "tick", "certify")
#: Every ``CVF_*`` variable the action's Run step may set (tests hold action.yml to it).
INPUT_VARIABLES = ("CVF_COMMAND", "CVF_CONFIG", "CVF_DRY_RUN", "CVF_PATHS", "CVF_PR",
                   "CVF_SKILL", "CVF_RISK", "CVF_PERIOD", "CVF_PERSIST", "CVF_CERTIFICATE",
                   "CVF_BOT_LOGIN", "CVF_NOW")
OUTPUTS = ("decision", "risk-level", "rfc-status", "report-path")
#: What the bot writes with, as a workflow's ``permissions:`` block spells it.
PERMISSIONS = ("pull-requests: write", "checks: write", "contents: write", "issues: write")
PERIODS = ("1h", "24h", "7d", "30d")
_LOCATED = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)?\s*(?P<msg>.*)$",
                      re.DOTALL)


@dataclass(frozen=True)
class Inputs:
    """The action's inputs, checked once: a typo fails here with the input's name."""

    command: str
    config: str | None
    dry_run: bool
    paths: tuple[str, ...] = ()
    pr: int | None = None
    skill: str = ""
    risk: str = ""
    period: str = "24h"
    persist: bool = False
    certificate: str = ""
    bot_login: str = ""
    now: datetime | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], workspace: Path) -> Inputs:
        command = env.get("CVF_COMMAND", "").strip() or "handle"
        if command not in COMMANDS:
            raise ConfigError(f"input `command`: '{command}' is not one of "
                              f"{', '.join(COMMANDS)}", hint="fix `with: command:` in the workflow")
        pr_text = env.get("CVF_PR", "").strip().lstrip("#")
        if pr_text and not pr_text.isdigit():
            raise ConfigError(f"input `pr`: expected a pull request number, got '{pr_text}'")
        period = env.get("CVF_PERIOD", "").strip() or "24h"
        if period not in PERIODS:
            raise ConfigError(f"input `period`: expected one of {', '.join(PERIODS)}, "
                              f"got '{period}'")
        risk = env.get("CVF_RISK", "").strip().upper()
        if risk and risk not in ("R0", "R1", "R2", "R3"):
            raise ConfigError(f"input `risk`: expected R0, R1, R2 or R3, got '{risk}'")
        return cls(command=command, config=_config_path(env.get("CVF_CONFIG", ""), workspace),
                   dry_run=_flag(env, "CVF_DRY_RUN", "dry-run"),
                   paths=tuple(env.get("CVF_PATHS", "").split()),
                   pr=int(pr_text) if pr_text else None, skill=env.get("CVF_SKILL", "").strip(),
                   risk=risk, period=period, persist=_flag(env, "CVF_PERSIST", "persist"),
                   certificate=env.get("CVF_CERTIFICATE", "").strip(),
                   bot_login=env.get("CVF_BOT_LOGIN", "").strip(),
                   now=_moment(env.get("CVF_NOW", "")))


def _moment(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"input `now`: expected a UTC time like 2026-12-01T09:00:00Z, "
                          f"got '{text}'") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _flag(env: Mapping[str, str], name: str, input_name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise ConfigError(f"input `{input_name}`: expected true or false, got '{value}'")


def _config_path(text: str, workspace: Path) -> str | None:
    """The config file relative to the workspace; outside it is refused (a workflow must
    not make the bot read, and echo in errors, a file such as the runner's credentials)."""
    text = text.strip()
    if not text or text == DEFAULT_PATH:
        return None  # the default: absent means every default value
    path = Path(text)
    resolved = (path if path.is_absolute() else workspace / path).resolve()
    if not resolved.is_relative_to(workspace.resolve()):
        raise ConfigError(f"input `config`: {text} is outside the workspace {workspace}",
                          hint="give a path inside the repository, e.g. .github/cvf.yml")
    return str(resolved.relative_to(workspace.resolve()))


@dataclass
class Finding:
    level: str  # error | warning | notice
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    title: str | None = None

    def command(self) -> str:
        return annotation(self.level, self.message, file=self.file, line=self.line,
                          col=self.col, title=self.title)


@dataclass
class Report:
    """What one action run found; written as the JSON report and the job summary."""

    command: str
    dry_run: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # markdown sections for the summary
    details: dict[str, Any] = field(default_factory=dict)
    blocked: bool = False  # the governance rule says the pull request must not merge
    broken: bool = False  # the setup is wrong: config, inputs, permissions
    verdict: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if self.blocked or self.broken else 0

    def add(self, level: str, message: str, **where: Any) -> None:
        self.findings.append(Finding(level, message, **where))

    def as_json(self, report_path: str) -> str:
        return json.dumps({"command": self.command, "dry_run": self.dry_run,
                           "exit_code": self.exit_code, "blocked": self.blocked,
                           "setup_error": self.broken, "verdict": self.verdict,
                           "outputs": {**self.outputs, "report-path": report_path},
                           "findings": [asdict(f) for f in self.findings],
                           "details": self.details}, indent=2, default=str) + "\n"


class PermissionWatch:
    """Wraps ports so a 403 on a write is remembered even when a handler's failure is
    caught by the dispatcher (which keeps only a message)."""

    def __init__(self) -> None:
        self.denied: list[PermissionDenied] = []

    def wrap(self, port: GitHubPort) -> GitHubPort:
        watch = self

        class Watched:
            def __getattr__(self, name: str) -> Any:
                value = getattr(port, name)
                if not callable(value):
                    return value

                def call(*args: Any, **kwargs: Any) -> Any:
                    try:
                        return value(*args, **kwargs)
                    except PermissionDenied as exc:
                        watch.denied.append(exc)
                        raise

                return call

        return cast(GitHubPort, Watched())

    def factory(self, inner: GitHubFactory) -> GitHubFactory:
        def make(repo: str, installation_id: int | None = None, *,
                 dry_run: bool = False) -> GitHubPort:
            return self.wrap(inner(repo, installation_id, dry_run=dry_run))

        return cast(GitHubFactory, make)


@dataclass
class Run:
    """Everything one command needs, built from the runner's environment."""

    state: CliState
    inputs: Inputs
    env: Mapping[str, str]
    workspace: Path
    report: Report
    factory: GitHubFactory | None = None
    watch: PermissionWatch = field(default_factory=PermissionWatch)
    clock: Callable[[], datetime] = utcnow
    echo: Callable[[str], None] = click.echo
    opened: list[GitHubPort] = field(default_factory=list)

    @property
    def config(self) -> Config:
        return self.state.config

    @property
    def repo(self) -> str:
        repo = str((self.payload().get("repository") or {}).get("full_name", "")) \
            or self.env.get("GITHUB_REPOSITORY", "")
        if "/" not in repo:
            raise InputError("which repository?", hint="GITHUB_REPOSITORY is set by GitHub "
                             "Actions; outside Actions set it to owner/name")
        return repo

    def base_factory(self) -> GitHubFactory:
        return self.factory or factory_from_config(self.config, self.env)

    def port(self, *, dry_run: bool) -> GitHubPort:
        port = self.watch.factory(self.base_factory())(self.repo, None, dry_run=dry_run)
        self.opened.append(port)
        return port

    def close(self) -> None:
        from bot.github.delivery import close_port

        for port in self.opened:
            close_port(port)

    def payload(self) -> dict[str, Any]:
        path = self.env.get("GITHUB_EVENT_PATH", "")
        if not path:
            return {}
        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


# -- the commands ----------------------------------------------------------------------
def run_handle(run: Run) -> None:
    from bot.commands.github import handle_event

    seen: dict[str, Any] = {}

    def keep(event: Event, outcome: Outcome) -> None:
        seen.update(event=event, outcome=outcome)

    base = run.base_factory()
    dry_run = run.inputs.dry_run
    handle_event(run.state, event_name=None, payload_path=None, dry_run=dry_run, env=run.env,
                 router=load_handlers(), factory=run.watch.factory(base), clock=run.clock,
                 echo=run.echo, report=keep)
    payload = run.payload()
    if run.watch.denied and _fork_pull(payload) and not dry_run:
        # A fork's pull request gets a read-only token: report what the bot would have
        # done instead of failing the contributor's run.
        run.report.add("warning", "this pull request comes from a fork, so the workflow's "
                       "token is read-only: nothing was posted on the pull request; the "
                       "results are in this summary. To post on fork pull requests, install "
                       "CVF Governance as a GitHub App.", title="CVF Governance: fork")
        run.watch.denied.clear()
        seen.clear()
        run.report.details["fork_read_only"] = True
        handle_event(run.state, event_name=None, payload_path=None, dry_run=True,
                     env=run.env, router=load_handlers(), factory=run.watch.factory(base),
                     clock=run.clock, echo=run.echo, report=keep)
    event: Event | None = seen.get("event")
    outcome: Outcome | None = seen.get("outcome")
    if event is None or outcome is None:
        name = run.env.get("GITHUB_EVENT_NAME", "")
        run.report.verdict = f"Nothing to do for `{name}` events."
        run.report.details["status"] = "no_handler"
        if name in ("schedule", "workflow_dispatch"):
            run.report.add("notice", f"`command: handle` reacts to pull request, review and "
                           f"comment events; for a {name} run use `command: tick` (comment "
                           f"periods, reminders, alerts) or `command: metrics`",
                           title="CVF Governance")
        return
    gate = event.outputs.get("routing-gate", "")
    for key in ("decision", "risk-level", "rfc-status"):
        if event.outputs.get(key):
            run.report.outputs[key] = event.outputs[key]
    run.report.parts.extend(event.summary)
    run.report.details.update(status=outcome.status, handlers=outcome.handlers,
                              handler_outputs={k: v for k, v in event.outputs.items()
                                               if k != "routing-record"})
    _permission_findings(run)
    for error in outcome.errors:
        if "PermissionDenied" not in error:
            run.report.add("error", f"a handler failed: {error}", title="CVF Governance")
            run.report.broken = True
    if gate == "failure":
        run.report.blocked = True
        run.report.add("error", f"the cvf/routing gate failed "
                       f"({event.outputs.get('risk-level', '?')}, "
                       f"{event.outputs.get('decision', '?')}): this pull request must not "
                       f"merge yet; the job summary and the cvf/routing check say what to do",
                       title="cvf/routing")
    label = f"{event.name}.{event.action}" if event.action else event.name
    run.report.verdict = (f"Handled `{label}`: {len(outcome.handlers)} handler(s)"
                          + (f", routing gate `{gate}`" if gate else "") + ".")


def _fork_pull(payload: Mapping[str, Any]) -> bool:
    pull = payload.get("pull_request") or {}
    if not pull:
        return False
    head = ((pull.get("head") or {}).get("repo") or {}).get("full_name")
    base = ((pull.get("base") or {}).get("repo") or {}).get("full_name")
    return head is None or str(head).lower() != str(base).lower()


def _permission_findings(run: Run) -> None:
    if not run.watch.denied:
        return
    run.report.broken = True
    first = run.watch.denied[0]
    run.report.add("error", f"{first} — the workflow needs `permissions:` "
                   f"{', '.join(PERMISSIONS)} (or a GitHub App token with the same "
                   f"permissions)", title="CVF Governance: missing permission")
    run.report.details["permission_denied"] = [str(e) for e in run.watch.denied]


def run_lint(run: Run) -> None:
    from bot.commands.rfc import run_lint as lint

    targets: list[Path] = []
    for text in run.inputs.paths:
        path = (run.workspace / text).resolve()
        if not path.is_relative_to(run.workspace.resolve()):
            raise ConfigError(f"input `paths`: {text} is outside the workspace")
        if not path.exists():
            raise ConfigError(f"input `paths`: {text} does not exist",
                              hint="give RFC files or folders relative to the repository root")
        targets.append(path)
    result = lint(run.state, tuple(targets))
    for d in result.diagnostics:
        run.report.add(d.severity, d.message + (f"\nhint: {d.hint}" if d.hint else ""),
                       file=d.path, line=d.line, col=d.column, title=f"{d.rule} {d.name}")
    run.report.outputs["decision"] = "pass" if result.ok else "fail"
    run.report.blocked = not result.ok
    run.report.verdict = f"RFC lint: {result.summary()}."
    run.report.details["lint"] = json.loads(result.as_json())


def run_route(run: Run) -> None:
    from bot.commands.routing import _check_skill, _policy, apply_store_health

    if run.inputs.skill:
        from bot.routing import RoutingRequest
        from bot.routing.model import RiskLevel

        policy = _policy(run.config)
        apply_store_health(policy.router, run.config)
        _check_skill(policy, run.inputs.skill, ())
        result = policy.router.route(RoutingRequest(
            skill_id=run.inputs.skill, reserve=False,
            risk_level=RiskLevel.parse(run.inputs.risk) if run.inputs.risk else None))
        run.report.outputs.update({"decision": result.decision.value,
                                   "risk-level": result.risk_level.name})
        run.report.details["routing"] = result.to_dict()
        run.report.verdict = (f"Skill `{result.skill_id}` routes to "
                              f"`{result.agent_id or 'no agent'}`: {result.risk_level.name}, "
                              f"{result.decision.value}.")
        if not result.routed:
            run.report.add("warning", f"no agent can run {result.skill_id}: {result.reason}",
                           title="cvf route")
        return
    from bot.handlers.routing import preview_pull

    number = run.inputs.pr or _pull_number(run.payload())
    if number is None:
        raise ConfigError("route: which pull request?", hint="set `with: pr:` or `skill:`, "
                          "or run on a pull_request event")
    evaluation, text, record = preview_pull(run.config, run.port(dry_run=True), number)
    gate = evaluation.gate
    run.report.outputs.update({"decision": evaluation.decision.value,
                               "risk-level": evaluation.risk.name})
    run.report.parts.append("\n".join(line for line in text.splitlines()
                                      if not line.startswith("<!-- cvf:")).strip())
    run.report.details.update(pull_request=number, gate=asdict(gate), record=record)
    run.report.verdict = f"Pull request #{number}: {gate.title or gate.status}."
    _permission_findings(run)
    if not gate.passed:
        run.report.blocked = True
        run.report.add("error", f"#{number} must not merge yet: {gate.title}. {gate.summary}",
                       title="cvf/routing")
        for path in evaluation.unscoped:  # shown on the file in the pull request's diff
            run.report.add("error", f"{path} is outside every skill's paths: move it to "
                           f"another pull request or add it to a skill's `paths`",
                           file=path, title="cvf/routing: out of scope")


def _pull_number(payload: Mapping[str, Any]) -> int | None:
    pull = payload.get("pull_request") or {}
    if isinstance(pull.get("number"), int):
        return int(pull["number"])
    issue = payload.get("issue") or {}
    if issue.get("pull_request") and isinstance(issue.get("number"), int):
        return int(issue["number"])
    return None


def run_metrics(run: Run) -> None:
    from bot.commands.metrics import build_report, run_collect, run_sync
    from bot.handlers.metrics import store_for
    from bot.metrics.alerts import evaluate

    now = run.clock()
    settings = run.config.section("metrics")
    lines: list[str] = []
    if run.inputs.persist:
        run_sync(run.state, "pull", repo=run.repo, dry_run=True, store_path=None, now=now,
                 env=run.env, factory=run.watch.factory(run.base_factory()), echo=lines.append)
    run_collect(run.state, since=None, pulls=(), repo=run.repo, store_path=None, now=now,
                env=run.env, factory=run.watch.factory(run.base_factory()), echo=lines.append)
    markdown = build_report(run.state, period=run.inputs.period, since=None, until=None,
                            fmt="markdown", role=None, with_alerts=True, store_path=None,
                            now=now)
    data = json.loads(build_report(run.state, period=run.inputs.period, since=None,
                                   until=None, fmt="json", role=None, with_alerts=False,
                                   store_path=None, now=now))
    store = store_for(run.config)
    try:
        alerts = evaluate(store, settings, now)
    finally:
        store.close()
    if run.inputs.persist and not run.inputs.dry_run:
        run_sync(run.state, "push", repo=run.repo, dry_run=False, store_path=None, now=now,
                 env=run.env, factory=run.watch.factory(run.base_factory()), echo=lines.append)
    for alert in alerts:
        run.report.add("error" if alert.severity in ("critical", "page") else "warning",
                       f"{alert.key}: {alert.reason}", title="CVF metrics alert")
    run.report.outputs["decision"] = "alerts" if alerts else "ok"
    run.report.parts.append(markdown)
    run.report.details.update(report=data, alerts=[a.to_json() for a in alerts], log=lines)
    run.report.verdict = (f"Metrics for the last {run.inputs.period}: "
                          f"{len(alerts)} alert(s) firing. " + " ".join(lines))
    _permission_findings(run)


def run_tick(run: Run) -> None:
    from bot.handlers.rfc import on_tick, tick_repository

    now = run.clock()
    port = run.port(dry_run=run.inputs.dry_run)
    if run.inputs.persist:
        _restore_store(run, port, now)
    rfc_report = tick_repository(port, run.config, now)
    moved: list[dict[str, Any]] = []
    for result in rfc_report.synced:
        for entry in result.new_entries:
            if entry.from_state != entry.to_state:
                moved.append({"rfc": result.number, "from": entry.from_state,
                              "to": entry.to_state, "command": entry.command})
    failed: list[str] = []
    for tick in load_handlers().ticks:
        if tick is on_tick:
            continue  # the RFC tick ran above, where its report is kept
        try:
            tick(port, run.config, now)
        except GitHubError as exc:
            if isinstance(exc, PermissionDenied):
                continue  # reported once, below
            failed.append(f"{tick.__module__}: {exc}")
    if run.inputs.persist and not run.inputs.dry_run:
        _save_store(run, port)
    for message in failed:
        run.report.add("error", message, title="CVF tick")
        run.report.broken = True
    run.report.outputs["decision"] = "changed" if moved else "idle"
    lines = [f"- #{m['rfc']}: {m['from']} → {m['to']}" for m in moved]
    run.report.parts.append("\n".join(["### RFC transitions", *(lines or ["None."])]))
    run.report.details.update(checked=rfc_report.checked, transitions=moved,
                              requests=port.stats.requests, writes=port.stats.writes)
    if run.inputs.dry_run and port.stats.write_log:
        from bot.github.dryrun import format_writes

        run.echo(format_writes(port.stats.write_log))
    run.report.verdict = (f"Tick at {now:%Y-%m-%d %H:%M} UTC: {rfc_report.checked} open "
                          f"RFC(s) checked, {len(moved)} transition(s), "
                          f"{port.stats.writes} write(s)"
                          + (" (dry run: nothing was written)." if run.inputs.dry_run else "."))
    _permission_findings(run)


def _restore_store(run: Run, port: GitHubPort, now: datetime) -> None:
    """A runner starts empty: the metrics store (records and open alert issues) comes
    from the data branch, so alerts see the history and a cleared alert's issue closes."""
    from bot.handlers.metrics import store_for, sync_pull

    store = store_for(run.config)
    try:
        result = sync_pull(port, store, run.config, now)
    finally:
        store.close()
    run.report.details["restored"] = result.added


def _save_store(run: Run, port: GitHubPort) -> None:
    from bot.handlers.metrics import push_alert_memory, store_for, sync_push

    store = store_for(run.config)
    try:
        written = sync_push(port, store, run.config)
        push_alert_memory(port, store, run.config)
    finally:
        store.close()
    run.report.details["saved"] = sum(written.values())


def run_certify(run: Run) -> None:
    from bot.certification.credential import issuer_for, load_public_key, verify_credential
    from bot.commands.cert import _materials

    materials = _materials(run.state)
    section = materials.section
    key_file = run.workspace / section["public_key"]
    if not key_file.is_file():
        raise ConfigError("issuer public key not found", where=section["public_key"],
                          hint="commit the issuer's public-key.pem at certification.public_key")
    key = load_public_key(key_file.read_text("utf-8"), source=section["public_key"])
    registry = materials.registry()
    now = run.clock()
    if run.inputs.certificate:
        entries = [{"file": run.inputs.certificate, "id": None}]
    else:
        entries = list(registry.certificates)
    checked: list[dict[str, Any]] = []
    for entry in entries:
        shown = str(entry["file"])
        file = (run.workspace / shown).resolve()
        if not file.is_relative_to(run.workspace.resolve()) or not file.is_file():
            run.report.add("error", f"certificate file {shown} not found", file=None,
                           title="cvf certify")
            checked.append({"file": shown, "ok": False, "problems": ["not found"]})
            continue
        text = file.read_text("utf-8")
        recorded = entry if entry.get("id") else _recorded(text, registry.certificates)
        result = verify_credential(text, public_key=key, now=now, revoked=registry.revoked,
                                   issuer_id=issuer_for(section, run.repo).id,
                                   recorded=recorded)
        for problem in result.problems:
            run.report.add("error", problem, file=shown, line=1, title="cvf certify")
        checked.append({"file": shown, "ok": result.ok, "login": result.login,
                        "level": result.level, "problems": list(result.problems)})
    bad = [c for c in checked if not c["ok"]]
    run.report.outputs["decision"] = "invalid" if bad else "valid"
    run.report.blocked = bool(bad)
    run.report.details["certificates"] = checked
    # Certificate files are user-supplied data: escape them before they reach markdown.
    rows = [f"| {escape_table_cell(c['file'])} | {escape_table_cell(c.get('login') or '-')} | "
            f"{escape_table_cell(c.get('level') or '-')} | "
            f"{'valid' if c['ok'] else 'invalid'} |" for c in checked]
    run.report.parts.append("\n".join(["| Certificate | Holder | Level | Result |",
                                       "|---|---|---|---|", *rows]) if rows else
                            "No certificates in the registry.")
    run.report.verdict = f"{len(checked)} certificate(s) checked: {len(bad)} invalid."


def _recorded(text: str, certificates: list[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        cert_id = json.loads(text).get("id")
    except (ValueError, AttributeError):
        return None
    return next((c for c in certificates if c["id"] == cert_id), None)


RUNNERS: dict[str, Callable[[Run], None]] = {
    "handle": run_handle, "lint": run_lint, "route": run_route, "metrics": run_metrics,
    "tick": run_tick, "certify": run_certify}


#: Commands that decide on GitHub read the rules from the default branch, not from the
#: checkout: on a pull_request run the checkout is the pull request's own code, and a pull
#: request must not loosen the rules it is judged by. It also lets a workflow skip checkout.
GOVERNING = ("handle", "route", "tick", "metrics")


def use_default_branch_config(run: Run) -> None:
    from bot.config import parse_config, with_defaults
    from bot.github.delivery import HOST_SECTIONS

    host = run.state.config
    port = run.port(dry_run=True)
    repository = run.payload().get("repository") or {}
    branch = str(repository.get("default_branch") or "") or port.default_branch()
    path = run.inputs.config or DEFAULT_PATH
    found = port.get_file(path, ref=branch)
    if found is None:
        if run.inputs.config:
            raise ConfigError(f"input `config`: {path} is not on the default branch {branch}",
                              hint="commit the config file, or drop the `config` input")
        data = with_defaults({})
    else:
        data = parse_config(found.text, source=path, root=run.workspace).data
    data = {**data, **{section: host.data[section] for section in HOST_SECTIONS}}
    run.state._config = Config(data=data, path=path, root=run.workspace)
    run.report.details["config"] = f"{path} on {branch}" if found else f"defaults ({path} "\
        f"is not on {branch})"


def with_bot_login(state: CliState, login: str) -> None:
    """The identity the token writes as: ``github-actions[bot]`` for the workflow's token,
    ``<app>[bot]`` for an App token. The bot finds its own sticky comments by it."""
    config = state.config
    if login and login != config.section("github")["bot_login"]:
        data = {**config.data, "github": {**config.section("github"), "bot_login": login}}
        state._config = Config(data=data, path=config.path, root=config.root)


# -- the host side: outputs, summary, annotations, report file ---------------------------
def report_file(env: Mapping[str, str], workspace: Path, command: str) -> Path:
    """``$RUNNER_TEMP/cvf/`` on a runner (never committed by a later step), else ``.cvf/``."""
    base = Path(env["RUNNER_TEMP"]) / "cvf" if env.get("RUNNER_TEMP") else workspace / ".cvf"
    return base / f"report-{command}.json"


def setup_findings(report: Report, exc: CvfError) -> None:
    """A config or input error as annotations, on the file and line it names."""
    report.broken = True
    problems = getattr(exc, "problems", None) or [str(exc)]
    for problem in problems:
        match = _LOCATED.match(problem)
        if match and not match.group("file").startswith(("http", "input")):
            report.add("error", match.group("msg"), file=match.group("file"),
                       line=int(match.group("line")),
                       col=int(match.group("col")) if match.group("col") else None,
                       title="CVF Governance: configuration")
        elif exc.where and _LOCATED.match(f"{exc.where}: x"):
            where = _LOCATED.match(f"{exc.where}: x")
            assert where is not None
            report.add("error", problem, file=where.group("file"), line=int(where.group("line")),
                       title="CVF Governance: configuration")
        else:
            report.add("error", problem, file=exc.where if exc.where and "/" in exc.where
                       else None, title="CVF Governance: configuration")
    report.verdict = "The action is not set up right: " + problems[0]


def execute(state: CliState, env: Mapping[str, str], *, factory: GitHubFactory | None = None,
            clock: Callable[[], datetime] = utcnow,
            echo: Callable[[str], None] = click.echo) -> int:
    """Run the command the inputs name and report it to the runner; returns the exit code."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or state.root)
    named = env.get("CVF_COMMAND", "").strip() or "handle"
    # The name goes into the report's file name: only a known command may.
    report = Report(command=named if named in COMMANDS else "action")
    try:
        inputs = Inputs.from_env(env, workspace)
        report.dry_run = inputs.dry_run
        if inputs.now is not None:
            fixed = inputs.now
            clock = lambda: fixed  # noqa: E731 - a preview: act as if it were this time
        run = Run(state=CliState(root=str(workspace), config_path=inputs.config),
                  inputs=inputs, env=env, workspace=workspace, report=report, factory=factory,
                  clock=clock, echo=echo)
        with_bot_login(run.state, inputs.bot_login)  # loads the config: errors come first
        try:
            if inputs.command in GOVERNING:
                use_default_branch_config(run)
            RUNNERS[inputs.command](run)
        finally:
            run.close()
    except PermissionDenied as exc:
        report.broken = True
        report.add("error", f"{exc} — the workflow needs `permissions:` "
                   f"{', '.join(PERMISSIONS)} (or a GitHub App token with the same "
                   f"permissions)", title="CVF Governance: missing permission")
        report.verdict = "GitHub refused a write: a permission is missing."
    except GitHubError as exc:
        report.broken = True
        report.add("error", str(exc), title="CVF Governance: GitHub")
        report.verdict = "GitHub could not be reached or refused the request."
    except CvfError as exc:
        setup_findings(report, exc)
    return publish(report, env, workspace, echo)


def publish(report: Report, env: Mapping[str, str], workspace: Path,
            echo: Callable[[str], None]) -> int:
    path = report_file(env, workspace, report.command)
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = str(path)
    path.write_text(report.as_json(shown), "utf-8")
    outputs = {name: report.outputs.get(name, "") for name in OUTPUTS[:-1]}
    for name, value in outputs.items():
        set_output(name, value, env)
    set_output("report-path", shown, env)
    add_summary(render("action/summary.md.j2", command=report.command, dry_run=report.dry_run,
                       verdict=report.verdict or "Done.",
                       outputs={k: v for k, v in outputs.items() if v},
                       findings=report.findings, parts=report.parts, report_path=shown), env)
    for finding in report.findings:
        echo(finding.command())
    echo(f"cvf {report.command}: {report.verdict or 'done'} (report: {shown})")
    return report.exit_code


def register(cli: click.Group) -> None:
    @cli.command("action")
    @pass_state
    def action_command(state: CliState) -> None:
        """Run the GitHub Action: the command in $CVF_COMMAND with the CVF_* inputs.

        \b
        Reads CVF_COMMAND (handle, lint, route, metrics, tick, certify), CVF_CONFIG,
        CVF_DRY_RUN, CVF_PATHS, CVF_PR, CVF_SKILL, CVF_RISK, CVF_PERIOD, CVF_PERSIST and
        CVF_CERTIFICATE; writes $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY and annotations.
        Exit 1 only when the pull request must not merge or the setup is wrong.
        """
        quiet_tracebacks(os.environ)
        raise SystemExit(execute(state, os.environ))


class _NoTraceback(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        plain = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(plain)


def quiet_tracebacks(env: Mapping[str, str]) -> None:
    """Log lines without tracebacks in a workflow log (the error is reported as an
    annotation); with the runner's debug logging on (RUNNER_DEBUG=1) keep them."""
    handler = logging.StreamHandler()
    debug = env.get("RUNNER_DEBUG") == "1"
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s") if debug
                         else _NoTraceback("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])
