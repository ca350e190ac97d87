"""The `cvf/routing` merge gate on pull requests.

Every event recomputes the gate from GitHub's facts (changed files, labels, reviews) plus
what only the bot could witness (who added a risk label, `/approve-risk` on which commit),
which it keeps in its own sticky report. A redelivered event therefore writes nothing new.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.config import Config
from bot.errors import CvfError
from bot.events import Event, OwnCommit, router
from bot.github.port import (
    ChangedFile,
    CheckRunOutput,
    Comment,
    GitHubError,
    GitHubPort,
    Review,
    TeamLookupError,
)
from bot.markdown import Md, code, command_lines, md
from bot.metrics.facts import DECISION_WORDS
from bot.replies import reply_body
from bot.routing.model import RiskLevel
from bot.routing.policy import RoutingPolicy, build_policy
from bot.routing.pulls import (
    GateState,
    HoldsLevel,
    PullEvaluation,
    PullFacts,
    RiskApproval,
    evaluate_pull,
    gate_records,
    no_level_required,
    risk_from_label,
    skills_for_paths,
)
from bot.routing.registry import load_registries
from bot.templating import render

MARKER = "<!-- cvf:routing -->"
_STATE = re.compile(r"<!-- cvf:routing-state ([A-Za-z0-9_=-]*) -->")
_COMMAND = re.compile(r"^\s*/approve-risk(?:[ \t]+(?P<reason>[^\n]*))?\s*$")
MAX_PATHS = 50
MAX_ROWS = 60  # skills shown; a comment may hold 65,536 characters
CHECK_TEXT_LIMIT = 65_535

LevelCheckFactory = Callable[[Config, GitHubPort], HoldsLevel]
RecordSink = Callable[[dict[str, Any]], None]
HealthSource = Callable[[Config], Mapping[str, float]]

_level_check: LevelCheckFactory | None = None
_record_sinks: list[RecordSink] = []
_health_source: HealthSource | None = None


def level_check() -> LevelCheckFactory | None:
    """The installed certification seam (so a caller can restore it)."""
    return _level_check


def set_level_check(factory: LevelCheckFactory | None) -> None:
    """The certification seam: ``factory(config, port)`` returns ``holds_level(login, level)``,
    asked before an R2 approval or an R3 `/approve-risk` counts. None: no level required."""
    global _level_check
    _level_check = factory


def add_record_sink(sink: RecordSink) -> None:
    """Also hand every record the gate makes (its decision, and the approvals requested,
    granted or rejected: ``bot.metrics.facts``) to ``sink``."""
    _record_sinks.append(sink)


def remove_record_sink(sink: RecordSink) -> None:
    if sink in _record_sinks:
        _record_sinks.remove(sink)


def health_source() -> HealthSource | None:
    """The installed health seam (so a caller can restore it)."""
    return _health_source


def set_health_source(source: HealthSource | None) -> None:
    """Where agents' recent error rates (0..1) come from, e.g. the metrics engine's feed;
    agents above ``routing.health_bound`` are then ranked after healthy ones."""
    global _health_source
    _health_source = source


class Membership:
    """Role membership for one event, each team/login pair asked at most once.

    A team that cannot be read never counts as "everyone": its members simply do not
    count, and the report names the team.
    """

    def __init__(self, port: GitHubPort, policy: RoutingPolicy) -> None:
        self.port = port
        self.policy = policy
        self.failures: list[str] = []
        self._cache: dict[tuple[str, str], bool] = {}

    def __call__(self, role: str, login: str) -> bool:
        members = self.policy.roles.get(role)
        if members is None or not login:
            return False
        if login.lower() in members.users:
            return True
        for team in members.teams:
            key = (team.lower(), login.lower())
            if key not in self._cache:
                org, _, slug = team.partition("/")
                try:
                    self._cache[key] = self.port.is_team_member(org, slug, login)
                except TeamLookupError:
                    self._cache[key] = False
                    if team not in self.failures:
                        self.failures.append(team)
            if self._cache[key]:
                return True
        return False

    def describe(self, role: str) -> str:
        return ", ".join(self.members(role))

    def members(self, role: str) -> list[str]:
        """The role's users and teams (``org/team``), as configured."""
        members = self.policy.roles.get(role)
        if members is None:
            return []
        return [*sorted(members.users), *members.teams]


@dataclass
class _Context:
    event: Event
    port: GitHubPort
    policy: RoutingPolicy
    number: int
    problems: list[str] = field(default_factory=list)
    holds: HoldsLevel | None = None
    files: list[ChangedFile] | None = None  # read once per event
    reviews: tuple[Review, ...] | None = None


@router.register("pull_request", "opened", "edited", "synchronize", "reopened", "labeled",
                 "unlabeled", "ready_for_review")
def on_pull_request(event: Event, port: GitHubPort) -> None:
    pull = event.payload.get("pull_request") or {}
    number = pull.get("number") or event.payload.get("number")
    if not isinstance(number, int):
        return
    ctx = _context(event, port, number)
    label = str((event.payload.get("label") or {}).get("name", ""))
    action = event.action
    if action in ("labeled", "unlabeled") and risk_from_label(
            label, ctx.policy.label_prefix) is not None:
        _label_changed(ctx, label, added=action == "labeled")
        return
    _evaluate_and_publish(ctx)


@router.register("pull_request_review", "submitted", "dismissed", "edited")
def on_review(event: Event, port: GitHubPort) -> None:
    number = (event.payload.get("pull_request") or {}).get("number")
    if isinstance(number, int):
        _evaluate_and_publish(_context(event, port, number))


@router.register("issue_comment", "created")
def on_comment(event: Event, port: GitHubPort) -> None:
    """A comment holding `/approve-risk` re-evaluates the gate, which answers every
    unanswered command in the comment history (this one, and any whose delivery was lost)."""
    issue = event.payload.get("issue") or {}
    comment = event.payload.get("comment") or {}
    if "pull_request" not in issue or event.sender_is_bot:
        return
    number = issue.get("number")
    if _command(str(comment.get("body", ""))) is None or not isinstance(number, int):
        return
    ctx = _context(event, port, number)
    comments = port.list_issue_comments(number)
    pull = port.get_pull(number)
    if pull.state != "open":
        _answer_commands(ctx, comments, _read_state(ctx, comments), pull,
                         Membership(port, ctx.policy))
        return
    _evaluate_and_publish(ctx, comments=comments, pull=pull)


@router.check(lambda config: str(config.section("routing").get("check_name", "cvf/routing")))
def refresh_gate(event: Event, port: GitHubPort, number: int,
                 own_commit: OwnCommit | None) -> None:
    """Put the gate on the pull request's head again. After the bot's own commit, the
    gate goes on that commit and the commit is remembered, so approvals of its parent
    still count (``approvals_survive_push: false`` is about people's pushes)."""
    ctx = _context(event, port, number)
    comments = port.list_issue_comments(number)
    state = _read_state(ctx, comments)
    pull = port.get_pull(number)
    if own_commit is not None:
        state.own_commits[own_commit.sha] = own_commit.parent
        if pull.head_sha != own_commit.sha:  # GitHub may not show the new head yet
            pull = replace(pull, head_sha=own_commit.sha)
    _evaluate_and_publish(ctx, state=state, comments=comments, pull=pull)


def catch_up(event: Event, port: GitHubPort, number: int) -> None:
    """The gate recomputed for the tick's sweep, which answers any `/approve-risk` whose
    delivery was lost (a closed pull request is left alone)."""
    _evaluate_and_publish(_context(event, port, number))


# -- flows ----------------------------------------------------------------------------
def _context(event: Event, port: GitHubPort, number: int) -> _Context:
    config = event.config
    section = config.section("routing")

    def read(path: str) -> str | None:
        found = port.get_file(path)  # the default branch: a PR cannot change the registry
        return found.text if found is not None else None

    policy = build_policy(section, committee=config.rfc.get("committee"), source=config.path,
                          registries=load_registries(section, read, source=config.path))
    if _health_source is not None:
        for agent_id, error_rate in _health_source(config).items():
            if agent_id in policy.router.agents:
                policy.router.set_health(agent_id, error_rate)
    return _Context(event, port, policy, number)


def _label_changed(ctx: _Context, label: str, *, added: bool) -> None:
    comments = ctx.port.list_issue_comments(ctx.number)
    state = _read_state(ctx, comments)
    key = label.lower()
    membership = Membership(ctx.port, ctx.policy)
    sender = ctx.event.sender
    pull = ctx.port.get_pull(ctx.number)
    if not added:
        state.lowered_by.pop(key, None)
    elif membership("committee", sender):
        state.lowered_by[key] = sender
    else:
        state.lowered_by.pop(key, None)
        ctx.files = ctx.port.list_pull_files(ctx.number)
        touched, _ = skills_for_paths(ctx.policy, _paths(ctx.files))
        base = max((s.risk_level for s, _ in touched), default=ctx.policy.default_risk)
        level = risk_from_label(label, ctx.policy.label_prefix)
        if level is not None and level < base:
            _refuse(ctx, comments, f"label:{key}:{sender.lower()}:{pull.head_sha}", sender,
                    f"you cannot lower the risk of this pull request from {base.name} to "
                    f"{level.name}: only a committee member may. The label is ignored.",
                    f"Added the label “{label}”.",
                    instead="ask a committee member to add the label, or change the "
                    "pull request so it no longer touches the riskier paths.")
    _evaluate_and_publish(ctx, state=state, comments=comments, pull=pull,
                          membership=membership)


def _command(body: str) -> re.Match[str] | None:
    """The `/approve-risk` line of a comment, if it holds one (not quoted, not in code)."""
    return next((m for _, line in command_lines(body) if (m := _COMMAND.match(line))), None)


def _answer_commands(ctx: _Context, comments: list[Comment], state: GateState, pull: Any,
                     membership: Membership) -> None:
    """Answer every `/approve-risk` in the comment history not answered yet, each once:
    answered ids go into the state the sticky report keeps, so a redelivered or later
    event finds them. Each is judged by the head the bot showed when it was written."""
    answered = set(state.answered)
    for comment in comments:
        if comment.id in answered or comment.author_is_bot or _is_own(ctx, comment):
            continue
        match = _command(comment.body)
        if match is None:
            continue
        _approve_risk(ctx, comments, state, pull, membership, comment,
                      (match.group("reason") or "").strip())
        state.answered.append(comment.id)
        answered.add(comment.id)


def _approve_risk(ctx: _Context, comments: list[Comment], state: GateState, pull: Any,
                  membership: Membership, comment: Comment, reason: str) -> None:
    sender = comment.author
    quote = comment.body
    url = comment.html_url
    key = f"approve-risk:{comment.id}"
    if pull.state != "open":
        _refuse(ctx, comments, key, sender, "this pull request is closed.", quote, url=url,
                instead="reopen it first if it still needs the approval.")
        return
    evaluation = _evaluate(ctx, pull, state, membership)
    role = ctx.policy.approval_roles[RiskLevel.R3]
    holds = _holds_level(ctx)
    if evaluation.risk != RiskLevel.R3:
        what = {RiskLevel.R2: "it needs an approving review instead",
                RiskLevel.R1: "it only needs its changes to stay within scope",
                RiskLevel.R0: "nothing needs approving"}[evaluation.risk]
        _refuse(ctx, comments, key, sender, Md(f"`/approve-risk` is for R3 pull requests; "
                f"this one is {evaluation.risk.name}, so {what}."), quote, url=url)
        return
    if not membership(role, sender):
        _refuse(ctx, comments, key, sender, f"only members of {role} can record the human "
                f"intervention an R3 pull request needs.", quote, url=url,
                instead=md("ask one of them ({}) to comment {}.",
                           membership.describe(role) or role, code("/approve-risk <reason>")))
        return
    if sender.lower() == pull.author.lower():
        _refuse(ctx, comments, key, sender, "the author of a pull request cannot approve its "
                "own risk; another committee member must.", quote, url=url,
                instead=md("ask another member of {} to comment {}.", role,
                           code("/approve-risk <reason>")))
        return
    if not holds(sender, RiskLevel.R3):
        why = (ctx.problems[-1] + "." if ctx.problems else
               "you do not hold the certification level needed to approve R3 changes.")
        _refuse(ctx, comments, key, sender, why, quote, url=url,
                instead="ask a certified member of the role, or earn the level with "
                "`/cert request <level>`.")
        return
    state.record_risk_approval(RiskApproval(
        by=sender, sha=state.head_at(comment.created_at, pull.head_sha), reason=reason[:500],
        at=comment.created_at.isoformat()))
    ctx.port.add_comment_reaction(comment.id, "+1")


def _evaluate_and_publish(ctx: _Context, *, state: GateState | None = None,
                          comments: list[Comment] | None = None, pull: Any = None,
                          membership: Membership | None = None) -> PullEvaluation | None:
    pull = pull or ctx.port.get_pull(ctx.number)
    if pull.state != "open":
        return None
    if state is None:
        comments = comments if comments is not None else ctx.port.list_issue_comments(
            ctx.number)
        state = _read_state(ctx, comments)
    membership = membership or Membership(ctx.port, ctx.policy)
    state.saw_head(pull.head_sha, ctx.event.now)
    if comments is None:
        comments = ctx.port.list_issue_comments(ctx.number)
    _answer_commands(ctx, comments, state, pull, membership)
    evaluation = _evaluate(ctx, pull, state, membership)
    _request_reviews(ctx, pull, evaluation)
    _publish(ctx, evaluation, state, membership)
    return evaluation


def _evaluate(ctx: _Context, pull: Any, state: GateState,
              membership: Membership) -> PullEvaluation:
    if ctx.files is None:
        ctx.files = ctx.port.list_pull_files(ctx.number)
    if ctx.reviews is None:
        ctx.reviews = tuple(ctx.port.list_reviews(ctx.number))
    facts = PullFacts(number=pull.number, author=pull.author, head_sha=pull.head_sha,
                      paths=tuple(_paths(ctx.files)), labels=tuple(pull.labels),
                      reviews=ctx.reviews, created_at=pull.created_at, url=pull.html_url,
                      same_as_head=state.same_as(pull.head_sha))
    return evaluate_pull(ctx.policy, facts, state, is_member=membership,
                         holds_level=_holds_level(ctx))


def _publish(ctx: _Context, ev: PullEvaluation, state: GateState,
             membership: Membership) -> None:
    report = render_report(ctx.policy, ev, state, membership, ctx.problems)
    ctx.port.upsert_sticky_comment(ctx.number, MARKER, report)
    gate = ev.gate
    text = "\n".join(line for line in report.splitlines() if not line.startswith("<!-- cvf:"))
    if len(text) > CHECK_TEXT_LIMIT:
        text = text[:CHECK_TEXT_LIMIT - 40] + "\n\n… (cut; see the pull request comment)"
    ctx.port.set_check_run(ev.facts.head_sha, ctx.policy.check_name, status=gate.status,
                           conclusion=gate.conclusion,
                           output=CheckRunOutput(title=gate.title, summary=gate.summary,
                                                 text=text))
    records = gate_records(ev, repo=ctx.event.repo or ctx.port.repo, now=ctx.event.now,
                           may_approve=_may_approve(ev, membership))
    ctx.event.outputs.update({
        "risk-level": ev.risk.name,
        "decision": ev.decision.value,
        "routing-gate": gate.conclusion or gate.status,
        "routing-record": json.dumps(records[0], sort_keys=True),
        "routing-records": json.dumps(records, sort_keys=True),
    })
    ctx.event.summary.append(report.split("\n", 2)[2] if report.count("\n") >= 2 else report)
    for sink in list(_record_sinks):
        for record in records:
            sink(record)


def _request_reviews(ctx: _Context, pull: Any, ev: PullEvaluation) -> None:
    """While R2 or R3 waits, ask the approver roles' members (their users, and their teams
    of this repository's organisation) for a review: each once per head, never the author
    or someone whose review of this head is in; a refusal is reported, not swallowed."""
    if ev.risk < RiskLevel.R2 or ev.gate.passed:
        return
    head = ev.facts.head_sha
    done = {r.author.lower() for r in ctx.reviews or () if r.commit_id == head}
    done |= {u.lower() for u in pull.requested_reviewers} | {pull.author.lower()}
    asked_teams = {t.lower() for t in pull.requested_teams}
    owner = (ctx.event.repo or ctx.port.repo).split("/")[0].lower()
    users: list[str] = []
    teams: list[str] = []
    for role in ev.required_roles:
        members = ctx.policy.roles.get(role)
        if members is None:
            continue
        users += [u for u in sorted(members.users) if u.lower() not in done]
        for team in members.teams:
            org, _, slug = team.partition("/")
            if org.lower() == owner and slug.lower() not in asked_teams:
                teams.append(slug)
    users, teams = list(dict.fromkeys(users)), list(dict.fromkeys(teams))
    if not users and not teams:
        return
    try:
        ctx.port.request_reviewers(ctx.number, users, teams)
    except GitHubError as exc:
        ctx.problems.append(f"could not request reviews from "
                            f"{', '.join([*users, *(f'{owner}/{t}' for t in teams)])}: {exc}")


def _may_approve(ev: PullEvaluation, membership: Membership) -> list[str]:
    """Who may give the approval this evaluation waits for: the required roles' users
    and teams."""
    return list(dict.fromkeys(m for role in ev.required_roles
                              for m in membership.members(role)))


def render_report(policy: RoutingPolicy, ev: PullEvaluation, state: GateState,
                  membership: Membership | None = None, problems: Sequence[str] = ()) -> str:
    icons = {"success": "✅", "failure": "❌"}
    touched = [{"skill": t.skill, "paths": t.paths, "result": t.result,
                "approver": (policy.role_for(t.skill.risk_level, t.skill)
                             if t.skill.risk_level >= RiskLevel.R2 else None)}
               for t in ev.touched]
    members = {role: membership.describe(role) for role in ev.required_roles} if membership \
        else {}
    return render("routing/report.md.j2", marker=MARKER, state=state.encode(),
                  icon=icons.get(ev.gate.conclusion or "", "⏳"), risk=ev.risk.name,
                  decision=DECISION_WORDS[ev.decision.value], gate=ev.gate, touched=touched,
                  default_risk=policy.default_risk.name, unscoped=ev.unscoped,
                  max_paths=MAX_PATHS, max_rows=MAX_ROWS, required_roles=ev.required_roles,
                  members=members,
                  approvers=ev.approvers, risk_approval=ev.risk_approval,
                  stale=ev.stale_approvals, dismissed=ev.dismissed,
                  not_counted=ev.not_counted,
                  team_failures=membership.failures if membership else [],
                  problems=list(problems),
                  notes=ev.risk_notes, head_sha=ev.facts.head_sha,
                  survive_push=policy.approvals_survive_push)


def preview_pull(config: Config, port: GitHubPort, number: int
                 ) -> tuple[PullEvaluation, str, dict[str, Any]]:
    """Evaluate a pull request as the gate would, writing nothing (for `cvf route --pr`).

    Returns the evaluation, the report text and the decision record.
    """
    event = Event(name="preview", payload={}, config=config)
    ctx = _context(event, port, number)
    pull = port.get_pull(number)
    state = _read_state(ctx, port.list_issue_comments(number))
    membership = Membership(port, ctx.policy)
    evaluation = _evaluate(ctx, pull, state, membership)
    report = render_report(ctx.policy, evaluation, state, membership, ctx.problems)
    record = gate_records(evaluation, repo=port.repo, now=event.now,
                          may_approve=_may_approve(evaluation, membership),
                          source="cvf-route-preview")[0]
    return evaluation, report, record


# -- helpers --------------------------------------------------------------------------
def _paths(files: list[ChangedFile]) -> list[str]:
    paths: list[str] = []
    for f in files:
        paths.append(f.filename)
        if f.previous_filename and f.previous_filename != f.filename:
            paths.append(f.previous_filename)
    return list(dict.fromkeys(paths))


def _holds_level(ctx: _Context) -> HoldsLevel:
    """The certification check for this event; if it cannot answer, nobody's approval
    that needs a level counts and the report says why (never a silent pass)."""
    if ctx.holds is not None:
        return ctx.holds
    if _level_check is None:
        ctx.holds = no_level_required
        return ctx.holds
    answers: dict[tuple[str, RiskLevel], bool] = {}
    check: list[HoldsLevel] = []

    def holds(login: str, level: RiskLevel) -> bool:
        key = (login.lower(), level)
        if key not in answers:
            try:
                if not check:
                    assert _level_check is not None
                    check.append(_level_check(ctx.event.config, ctx.port))
                answers[key] = bool(check[0](login, level))
            except (CvfError, GitHubError) as exc:
                answers[key] = False
                message = (f"certification could not be checked, so approvals that need a "
                           f"certification level do not count: {exc}")
                if message not in ctx.problems:
                    ctx.problems.append(message)
        return answers[key]

    ctx.holds = holds
    return holds


def _is_own(ctx: _Context, comment: Comment) -> bool:
    bot = str(ctx.event.config.section("github")["bot_login"]).lower()
    author = comment.author.lower()
    return author == bot or author == bot.removesuffix("[bot]")


def _read_state(ctx: _Context, comments: list[Comment]) -> GateState:
    for comment in comments:
        if _is_own(ctx, comment) and MARKER in comment.body:
            match = _STATE.search(comment.body)
            return GateState.decode(match.group(1)) if match else GateState()
    return GateState()


def _refuse(ctx: _Context, comments: list[Comment], key: str, login: str, why: str,
            quote: str, *, url: str = "", instead: str | None = None) -> None:
    """Answer a refused request once (a redelivered event finds the earlier answer), in
    the shared reply format (bot.replies)."""
    tag = f"<!-- cvf:routing-reply {re.sub(r'[^A-Za-z0-9:_.@-]', '_', key)} -->"
    if any(_is_own(ctx, c) and tag in c.body for c in comments):
        return
    ctx.port.create_comment(ctx.number, reply_body(tag, login, why, quote=quote, url=url,
                                                   instead=instead))
