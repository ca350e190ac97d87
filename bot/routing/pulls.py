"""The merge gate for one pull request: which skills it touches, how risky it is, and
whether what that risk level needs has happened on the latest commit.

Plain facts in (paths, labels, reviews, recorded state), a ``PullEvaluation`` out; who
belongs to which role is asked through a callable so the core never talks to GitHub.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.github.port import Review
from bot.metrics.facts import approval_record, decision_record
from bot.routing.model import RiskLevel, RoutingDecision, RoutingRequest, RoutingResult, Skill
from bot.routing.policy import RoutingPolicy

MAX_OWN_COMMITS = 20
MAX_ANSWERED = 200
IsMember = Callable[[str, str], bool]  # (role, login) -> bool
HoldsLevel = Callable[[str, RiskLevel], bool]  # (login, risk level) -> certified enough?


def no_level_required(login: str, level: RiskLevel) -> bool:
    """The default certification gate: no certification level is needed to approve."""
    return True


@dataclass(frozen=True)
class RiskApproval:
    """A committee member's ``/approve-risk`` on one commit."""

    by: str
    sha: str
    reason: str = ""
    at: str = ""  # ISO 8601


@dataclass
class GateState:
    """What only the bot saw happen, kept (encoded) in its sticky report.

    GitHub does not say who added a label or which commit a comment was written
    against, so the bot notes it when the event arrives and reads it back later.
    """

    lowered_by: dict[str, str] = field(default_factory=dict)  # label (lower) -> login
    risk_approvals: list[RiskApproval] = field(default_factory=list)
    # Commits the bot pushed itself (front matter): sha -> the head it was made on. An
    # approval of the parent still holds on the bot's commit; people's pushes are not here.
    own_commits: dict[str, str] = field(default_factory=dict)
    # Commands already answered (comment ids), so replaying the comment history answers
    # each once; and the heads the bot saw, sha -> when it first saw it (ISO), so a
    # replayed `/approve-risk` is judged by the head shown when it was written.
    answered: list[int] = field(default_factory=list)
    heads: dict[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        data: dict[str, Any] = {"lowered_by": self.lowered_by,
                                "risk_approvals": [asdict(a) for a in self.risk_approvals]}
        if self.own_commits:
            data["own_commits"] = dict(list(self.own_commits.items())[-MAX_OWN_COMMITS:])
        if self.answered:
            data["answered"] = self.answered[-MAX_ANSWERED:]
        if self.heads:
            data["heads"] = dict(list(self.heads.items())[-MAX_OWN_COMMITS:])
        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, text: str) -> GateState:
        """Anything unreadable is an empty state (the report is the bot's own, but be safe)."""
        try:
            data = json.loads(base64.urlsafe_b64decode(text.encode()).decode())
            lowered = {str(k): str(v) for k, v in dict(data.get("lowered_by", {})).items()}
            approvals = [RiskApproval(by=str(a["by"]), sha=str(a["sha"]),
                                      reason=str(a.get("reason", "")), at=str(a.get("at", "")))
                         for a in data.get("risk_approvals", [])]
            own = {str(k): str(v) for k, v in dict(data.get("own_commits", {})).items()}
            answered = [int(i) for i in data.get("answered", [])]
            heads = {str(k): str(v) for k, v in dict(data.get("heads", {})).items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()
        return cls(lowered_by=lowered, risk_approvals=approvals, own_commits=own,
                   answered=answered, heads=heads)

    def saw_head(self, sha: str, when: datetime) -> None:
        """Note when the bot first saw ``sha`` as the pull request's head."""
        self.heads.setdefault(sha, when.isoformat())

    def head_at(self, when: datetime, current: str) -> str:
        """The head the bot showed at ``when``: the last head first seen by then. A command
        older than every head seen is judged by the oldest one (never by newer code)."""
        when = _aware(when)
        seen = sorted(((_aware(datetime.fromisoformat(t)), sha) for sha, t in self.heads.items()
                       if sha), key=lambda item: item[0])
        if not seen:
            return current
        before = [sha for t, sha in seen if t <= when]
        return before[-1] if before else seen[0][1]

    def same_as(self, head: str) -> tuple[str, ...]:
        """``head`` and the commits it stands for: its parents through the bot's own commits."""
        shas = [head]
        while shas[-1] in self.own_commits and len(shas) <= len(self.own_commits):
            shas.append(self.own_commits[shas[-1]])
        return tuple(shas)

    def record_risk_approval(self, approval: RiskApproval) -> bool:
        """Add unless the same person already approved this commit (a redelivery)."""
        for existing in self.risk_approvals:
            if existing.by.lower() == approval.by.lower() and existing.sha == approval.sha:
                return False
        self.risk_approvals.append(approval)
        return True


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PullFacts:
    number: int
    author: str
    head_sha: str
    paths: tuple[str, ...]
    labels: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()
    created_at: datetime | None = None
    url: str = ""
    # The head and the commits it stands for (the bot's own commits on top of them).
    same_as_head: tuple[str, ...] = ()

    def is_head(self, sha: str) -> bool:
        return sha == self.head_sha or sha in self.same_as_head


@dataclass(frozen=True)
class TouchedSkill:
    skill: Skill
    paths: tuple[str, ...]
    result: RoutingResult


@dataclass(frozen=True)
class Gate:
    """The check run to set: ``status`` queued/in_progress/completed, ``conclusion``."""

    status: str
    conclusion: str | None
    title: str
    summary: str

    @property
    def passed(self) -> bool:
        return self.conclusion == "success"


@dataclass(frozen=True)
class Approver:
    login: str
    role: str
    at: datetime | None = None


@dataclass
class PullEvaluation:
    facts: PullFacts
    touched: list[TouchedSkill]
    unscoped: list[str]
    base_risk: RiskLevel
    risk: RiskLevel
    decision: RoutingDecision
    risk_notes: list[str]
    required_roles: list[str]
    approvers: list[Approver]
    stale_approvals: list[str]
    dismissed: list[str]
    not_counted: list[str]
    risk_approval: RiskApproval | None
    gate: Gate
    rejections: list[Approver] = field(default_factory=list)  # required role said no

    @property
    def deciding(self) -> TouchedSkill | None:
        """The touched skill with the highest risk (first by id on a tie)."""
        if not self.touched:
            return None
        return max(self.touched, key=lambda t: (t.skill.risk_level, _neg(t.skill.id)))

    @property
    def missing_roles(self) -> list[str]:
        granted = {a.role for a in self.approvers}
        return [r for r in self.required_roles if r not in granted]


def _neg(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def risk_from_label(label: str, prefix: str) -> RiskLevel | None:
    """``"risk: R2"`` -> R2; spacing and case after the prefix do not matter."""
    head = prefix.strip().lower()
    if not label.lower().startswith(head):
        return None
    rest = label[len(head):].strip().upper()
    return RiskLevel[rest] if rest in RiskLevel.__members__ else None


def skills_for_paths(policy: RoutingPolicy,
                     paths: Sequence[str]) -> tuple[list[tuple[Skill, list[str]]], list[str]]:
    """Skills whose globs match changed paths (with the paths), and the paths no skill covers."""
    hits: dict[str, list[str]] = {}
    unscoped: list[str] = []
    for path in paths:
        matched = False
        for skill, scope in policy.scopes:
            if scope.matches(path):
                hits.setdefault(skill.id, []).append(path)
                matched = True
        if not matched:
            unscoped.append(path)
    found = [(skill, hits[skill.id]) for skill, _ in policy.scopes if skill.id in hits]
    return found, unscoped


def evaluate_pull(policy: RoutingPolicy, facts: PullFacts, state: GateState, *,
                  is_member: IsMember, holds_level: HoldsLevel = no_level_required
                  ) -> PullEvaluation:
    touched_paths, unscoped = skills_for_paths(policy, facts.paths)
    touched = [TouchedSkill(skill, tuple(paths), policy.router.route(
                   RoutingRequest(skill_id=skill.id, reserve=False)))
               for skill, paths in touched_paths]
    base = max((t.skill.risk_level for t in touched), default=policy.default_risk)
    risk, notes = _apply_labels(policy, facts, state, base, is_member)
    decision = risk.decision

    roles: list[str] = []
    approvers: list[Approver] = []
    stale: list[str] = []
    dismissed: list[str] = []
    not_counted: list[str] = []
    risk_approval: RiskApproval | None = None
    if risk == RiskLevel.R2:
        at_r2 = [t.skill for t in touched if t.skill.risk_level == RiskLevel.R2]
        roles = sorted({r for r in (policy.role_for(RiskLevel.R2, s) for s in at_r2) if r}) or [
            policy.approval_roles[RiskLevel.R2]]
        approvers, stale, dismissed, not_counted = _review_approvals(
            policy, facts, roles, is_member, holds_level)
    elif risk == RiskLevel.R3:
        roles = [policy.approval_roles[RiskLevel.R3]]
    rejections = _rejections(policy, facts, roles, is_member)
    if risk == RiskLevel.R3:
        for approval in state.risk_approvals:
            fresh = facts.is_head(approval.sha) or policy.approvals_survive_push
            if not is_member(roles[0], approval.by):
                not_counted.append(f"{approval.by} (no longer in {roles[0]})")
            elif not holds_level(approval.by, RiskLevel.R3):
                not_counted.append(f"{approval.by} (lacks the certification level for R3)")
            elif not fresh:
                stale.append(approval.by)
            elif risk_approval is None:
                risk_approval = approval

    evaluation = PullEvaluation(
        facts=facts, touched=touched, unscoped=unscoped, base_risk=base, risk=risk,
        decision=decision, risk_notes=notes, required_roles=roles, approvers=approvers,
        stale_approvals=stale, dismissed=dismissed, not_counted=not_counted,
        risk_approval=risk_approval, gate=Gate("queued", None, "", ""), rejections=rejections)
    evaluation.gate = _gate(evaluation)
    return evaluation


def _apply_labels(policy: RoutingPolicy, facts: PullFacts, state: GateState, base: RiskLevel,
                  is_member: IsMember) -> tuple[RiskLevel, list[str]]:
    notes: list[str] = []
    raised: list[tuple[RiskLevel, str]] = []
    lowered: list[tuple[RiskLevel, str, str]] = []
    for label in facts.labels:
        level = risk_from_label(label, policy.label_prefix)
        if level is None:
            if label.lower().startswith(policy.label_prefix.strip().lower()):
                notes.append(f"Label “{label}” ignored: the level must be R0, R1, R2 or R3.")
            continue
        if level > base:
            raised.append((level, label))
        elif level < base:
            by = state.lowered_by.get(label.lower())
            if by and is_member("committee", by):
                lowered.append((level, label, by))
            else:
                notes.append(f"Label “{label}” ignored: lowering the risk below {base.name} "
                             f"needs a committee member to add the label.")
    if raised:
        level, label = max(raised)
        notes.insert(0, f"Risk raised from {base.name} to {level.name} by the label “{label}”.")
        return level, notes
    if lowered:
        level, label, by = max(lowered)
        notes.insert(0, f"Risk lowered from {base.name} to {level.name} by the label “{label}”, "
                        f"added by committee member {by}.")
        return level, notes
    return base, notes


def _latest_reviews(reviews: Sequence[Review]) -> dict[str, Review]:
    """Each reviewer's latest review that changes their stance (comments don't)."""
    ordered = sorted(reviews, key=lambda r: (r.submitted_at is None, r.submitted_at, r.id))
    latest: dict[str, Review] = {}
    for review in ordered:
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.author.lower()] = review
    return latest


def _rejections(policy: RoutingPolicy, facts: PullFacts, roles: list[str],
                is_member: IsMember) -> list[Approver]:
    """Members of a required role whose latest stance on this head is "changes
    requested": the approval they were asked for, rejected."""
    out: list[Approver] = []
    for login, review in sorted(_latest_reviews(facts.reviews).items()):
        if review.state != "CHANGES_REQUESTED" or login == facts.author.lower():
            continue
        if not facts.is_head(review.commit_id) and not policy.approvals_survive_push:
            continue
        out.extend(Approver(review.author, role, review.submitted_at)
                   for role in roles if is_member(role, review.author))
    return out


def _review_approvals(policy: RoutingPolicy, facts: PullFacts, roles: list[str],
                      is_member: IsMember, holds_level: HoldsLevel
                      ) -> tuple[list[Approver], list[str], list[str], list[str]]:
    approvers: list[Approver] = []
    stale: list[str] = []
    dismissed: list[str] = []
    not_counted: list[str] = []
    for login, review in sorted(_latest_reviews(facts.reviews).items()):
        name = review.author
        if review.state == "DISMISSED":
            dismissed.append(name)
            continue
        if review.state == "CHANGES_REQUESTED":
            not_counted.append(f"{name} (requested changes)")
            continue
        if login == facts.author.lower():
            continue
        member_of = [r for r in roles if is_member(r, name)]
        if not member_of:
            not_counted.append(f"{name} (not in {' or '.join(roles)})")
            continue
        if not holds_level(name, RiskLevel.R2):
            not_counted.append(f"{name} (lacks the certification level for R2)")
            continue
        if not facts.is_head(review.commit_id) and not policy.approvals_survive_push:
            stale.append(name)
            continue
        approvers.extend(Approver(name, role, review.submitted_at) for role in member_of)
    return approvers, stale, dismissed, not_counted


def _gate(ev: PullEvaluation) -> Gate:
    level = ev.risk
    if level == RiskLevel.R0:
        return Gate("completed", "success", "R0: auto-execute",
                    "Low risk: no approval needed.")
    if level == RiskLevel.R1:
        if ev.unscoped:
            shown = ", ".join(f"`{p}`" for p in ev.unscoped[:20])
            more = f" and {len(ev.unscoped) - 20} more" if len(ev.unscoped) > 20 else ""
            return Gate("completed", "failure",
                        f"R1: {len(ev.unscoped)} path(s) outside the skills' scope",
                        f"Scope guard: these changed paths are not covered by any skill's "
                        f"declared paths: {shown}{more}. Move them to another pull request, "
                        f"add them to a skill's `paths`, or raise the risk with a label.")
        return Gate("completed", "success", "R1: every change is within scope",
                    "Scope guard: every changed path is inside the touched skills' paths.")
    if level == RiskLevel.R2:
        missing = ev.missing_roles
        if not missing:
            names = ", ".join(sorted({a.login for a in ev.approvers}))
            return Gate("completed", "success", f"R2: approved by {names}",
                        f"Approval required and given on {ev.facts.head_sha[:7]} by {names}.")
        extra = ""
        if ev.stale_approvals:
            extra = (f" Approvals from before the latest push do not count: "
                     f"{', '.join(ev.stale_approvals)}.")
        return Gate("in_progress", None, f"R2: waiting for approval by {', '.join(missing)}",
                    f"Approval required: an approving review on {ev.facts.head_sha[:7]} by a "
                    f"member of {', '.join(missing)}.{extra}")
    role = ev.required_roles[0] if ev.required_roles else "committee"
    if ev.risk_approval is not None:
        return Gate("completed", "success", f"R3: human intervention recorded by "
                    f"{ev.risk_approval.by}",
                    f"{ev.risk_approval.by} ({role}) approved the risk on "
                    f"{ev.risk_approval.sha[:7]}.")
    # Waiting is pending, as for R2 (same words): the check stays in progress, which
    # blocks merging like a failure would without reading as one.
    return Gate("in_progress", None, f"R3: waiting for approval by {role}",
                f"Approval required: `/approve-risk <reason>` commented on "
                f"{ev.facts.head_sha[:7]} by a member of {role} (high risk: a human "
                f"intervention).")


def gate_records(ev: PullEvaluation, *, repo: str, now: datetime,
                 may_approve: Sequence[str] = (),
                 source: str = "cvf-routing") -> list[dict[str, Any]]:
    """What the metrics engine stores for this evaluation (``bot.metrics.facts``): the
    decision, and the approval requested, granted or rejected on this head.

    Ids come from the pull request, head, decision, state and person, so however many
    deliveries and re-evaluations there are, each fact is stored once. A decision that
    waits for its approval is ``pending``, never a failed execution, and its agent is
    the agent the router chose (``None`` when none could be), never the author."""
    deciding = ev.deciding
    result = deciding.result if deciding else None
    skill = deciding.skill.id if deciding else "unmatched-paths"
    facts = ev.facts
    needs = ev.risk >= RiskLevel.R2
    role = ", ".join(ev.required_roles) or None
    gate = "passed" if ev.gate.passed else ("pending" if needs else "blocked")
    common: dict[str, Any] = {"repo": repo, "number": facts.number,
                              "head_sha": facts.head_sha, "url": facts.url or None,
                              "timestamp": now, "source": source}
    records = [decision_record(
        **common, skill=skill, risk_level=ev.risk.name, decision=ev.decision.value,
        agent=result.agent_id if result and result.agent_id else None,
        fallbacks=list(result.fallback_agents) if result else [], approval_role=role,
        approvers=list(may_approve), gate=gate)]
    if not needs:
        return records
    about: dict[str, Any] = {"skill": skill, "risk_level": ev.risk.name}
    records.append(approval_record(state="requested", by=None, role=role, requested_at=now,
                                   decided_at=None, **common, **about))
    decided: list[tuple[str, Approver]] = []
    if ev.gate.passed and ev.risk == RiskLevel.R3 and ev.risk_approval is not None:
        at = parse_iso(ev.risk_approval.at)
        decided.append(("granted", Approver(ev.risk_approval.by, role or "", at)))
    elif ev.gate.passed:
        decided += [("granted", a) for a in ev.approvers]
    decided += [("rejected", r) for r in ev.rejections]
    seen: set[tuple[str, str]] = set()
    for state, who in decided:
        if (state, who.login.lower()) in seen:
            continue
        seen.add((state, who.login.lower()))
        records.append(approval_record(state=state, by=who.login, role=who.role,
                                       requested_at=None, decided_at=who.at or now,
                                       **common, **about))
    return records


def parse_iso(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else None
