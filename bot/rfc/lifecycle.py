"""The RFC lifecycle: every allowed transition, who may trigger it and its guard, in one table.

Handlers never decide a transition themselves: they gather facts (votes, concerns,
threads, the clock) and ask ``decide``. Keeping the table in one place is what makes the
permission matrix testable and the state machine explainable in the status comment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DRAFT = "draft"
OPEN = "open_for_comment"
REVIEW = "review"
ACCEPTED = "accepted"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
POSTPONED = "postponed"

STATES: tuple[str, ...] = (DRAFT, OPEN, REVIEW, ACCEPTED, REJECTED, WITHDRAWN, POSTPONED)
OPEN_STATES: frozenset[str] = frozenset({DRAFT, OPEN, REVIEW})
DECIDED_STATES: frozenset[str] = frozenset({ACCEPTED, REJECTED})
FINAL_STATES: frozenset[str] = frozenset({ACCEPTED, REJECTED, WITHDRAWN})

# Roles an actor can hold. "anyone" in a permission list admits every human user.
AUTHOR = "author"
COMMITTEE = "committee"
BINDING_VOTER = "binding_voter"
BOT = "bot"
ANYONE = "anyone"
ROLES: tuple[str, ...] = (AUTHOR, COMMITTEE, BINDING_VOTER, ANYONE)

# Commands that change the RFC (and so are answered, recorded and permission-checked).
LIFECYCLE_COMMANDS: tuple[str, ...] = (
    "open", "review", "accept", "reject", "postpone", "withdraw", "extend", "concern", "resolve",
)
# The clock's own transition; only the bot may trigger it.
PERIOD_END = "period_end"


@dataclass(frozen=True)
class Facts:
    """What the guards look at. The handler gathers these; the core only reads them."""

    now: datetime
    period_ends: datetime | None = None
    period_length: timedelta = timedelta(days=14)
    duration: timedelta | None = None  # the argument of `/rfc extend`
    concern: str = ""  # the argument of `/rfc concern` / `/rfc resolve`
    quorum_met: bool = False
    threshold_met: bool = False
    rule_text: str = ""
    unresolved_concerns: tuple[str, ...] = ()
    unanswered_threads: int = 0
    require_answered_threads: bool = False
    lint_errors: int = 0


@dataclass(frozen=True)
class Transition:
    """An allowed move. ``period_ends`` is the new end when the move sets or changes it."""

    command: str
    from_state: str
    to_state: str
    period_ends: datetime | None = None
    concern: str = ""

    @property
    def changes_state(self) -> bool:
        return self.from_state != self.to_state


@dataclass(frozen=True)
class Refusal:
    """Why a command was not applied; ``kind`` is not_permitted | wrong_state | guard | unknown."""

    command: str
    kind: str
    reason: str


Guard = Callable[[Facts], str | None]  # returns the reason it fails, or None


def _quorum(f: Facts) -> str | None:
    return None if f.quorum_met else f"the quorum is not met ({f.rule_text})"


def _threshold(f: Facts) -> str | None:
    return None if f.threshold_met else f"the approval threshold is not met ({f.rule_text})"


def _threshold_not_met(f: Facts) -> str | None:
    return ("the binding votes meet the approval threshold; accept it, or raise a concern"
            if f.threshold_met else None)


def _no_concerns(f: Facts) -> str | None:
    if not f.unresolved_concerns:
        return None
    return "unresolved concerns: " + ", ".join(f.unresolved_concerns)


def _answered_threads(f: Facts) -> str | None:
    if not f.require_answered_threads or f.unanswered_threads == 0:
        return None
    return f"{f.unanswered_threads} review thread(s) on the RFC have no reply from an author"


def _lint_clean(f: Facts) -> str | None:
    if not f.lint_errors:
        return None
    errors = "1 lint error" if f.lint_errors == 1 else f"{f.lint_errors} lint errors"
    return f"the RFC file has {errors}; see the `cvf/rfc` check"


def _period_over(f: Facts) -> str | None:
    if f.period_ends is None:
        return "no comment period is running"
    return None if f.now >= f.period_ends else "the comment period has not ended yet"


def _has_duration(f: Facts) -> str | None:
    if f.duration is None or f.duration <= timedelta(0):
        return 'give a duration, like "/rfc extend 7d"'
    return None


def _has_concern_name(f: Facts) -> str | None:
    return None if f.concern else 'name the concern, like "/rfc concern naming"'


MAX_OPEN_CONCERNS = 20  # the ledger and the status comment keep every open concern


def _new_concern(f: Facts) -> str | None:
    missing = _has_concern_name(f)
    if missing:
        return missing
    if f.concern in f.unresolved_concerns:
        return f"the concern '{f.concern}' is already raised"
    if len(f.unresolved_concerns) >= MAX_OPEN_CONCERNS:
        return (f"{MAX_OPEN_CONCERNS} concerns are already open; resolve one before raising "
                "another")
    return None


def _open_concern(f: Facts) -> str | None:
    missing = _has_concern_name(f)
    if missing:
        return missing
    if f.concern in f.unresolved_concerns:
        return None
    return f"there is no unresolved concern named '{f.concern}'"


@dataclass(frozen=True)
class Rule:
    command: str
    from_states: frozenset[str]
    to_state: str | None  # None: the state does not change
    roles: frozenset[str]
    guards: tuple[Guard, ...] = ()
    summary: str = ""


def _rule(command: str, sources: Iterable[str], target: str | None, roles: Iterable[str],
          guards: tuple[Guard, ...] = (), summary: str = "") -> Rule:
    return Rule(command, frozenset(sources), target, frozenset(roles), guards, summary)


# THE table. Order matters only for `/rfc help`, which lists it.
TABLE: tuple[Rule, ...] = (
    _rule("open", [DRAFT, POSTPONED], OPEN, [AUTHOR, COMMITTEE], (_lint_clean,),
          summary="start the comment period"),
    _rule("review", [OPEN], REVIEW, [COMMITTEE],
          summary="end the comment period early and move to review"),
    _rule(PERIOD_END, [OPEN], REVIEW, [BOT], (_period_over,),
          summary="the comment period ended"),
    _rule("accept", [REVIEW], ACCEPTED, [COMMITTEE],
          (_lint_clean, _quorum, _threshold, _no_concerns, _answered_threads),
          summary="record the decision to accept"),
    _rule("reject", [REVIEW], REJECTED, [COMMITTEE], (_quorum, _threshold_not_met),
          summary="record the decision to reject"),
    _rule("postpone", [DRAFT, OPEN, REVIEW], POSTPONED, [COMMITTEE],
          summary="set the RFC aside (it can be reopened later)"),
    _rule("withdraw", [DRAFT, OPEN, REVIEW, POSTPONED], WITHDRAWN, [AUTHOR, COMMITTEE],
          summary="withdraw the RFC"),
    _rule("extend", [OPEN, REVIEW], OPEN, [COMMITTEE], (_has_duration,),
          summary="lengthen (or reopen) the comment period"),
    _rule("concern", [DRAFT, OPEN, REVIEW], None, [COMMITTEE], (_new_concern,),
          summary="raise a blocking concern"),
    _rule("resolve", [DRAFT, OPEN, REVIEW], None, [COMMITTEE], (_open_concern,),
          summary="resolve a blocking concern"),
)

RULES: dict[str, Rule] = {rule.command: rule for rule in TABLE}


def default_permissions() -> dict[str, frozenset[str]]:
    """Who may trigger each user command when the config says nothing."""
    return {rule.command: rule.roles for rule in TABLE if rule.command != PERIOD_END}


def permissions_from_config(rfc_config: Mapping[str, object]) -> dict[str, frozenset[str]]:
    """The table's roles, overridden by ``rfc.permissions`` and ``rfc.authors_may_open``."""
    perms = default_permissions()
    configured = rfc_config.get("permissions") or {}
    if isinstance(configured, Mapping):
        for command, roles in configured.items():
            if command in perms and isinstance(roles, list):
                perms[command] = frozenset(str(r) for r in roles)
    if rfc_config.get("authors_may_open") is False:
        for command in ("open", "withdraw"):
            perms[command] = perms[command] - {AUTHOR}
    return perms


def permitted(roles: Iterable[str], allowed: frozenset[str]) -> bool:
    held = set(roles)
    if BOT in held:
        # The bot acts only through the clock; it never runs user commands.
        return BOT in allowed
    return ANYONE in allowed or bool(held & allowed)


def refuse_early(state: str, command: str, actor_roles: Iterable[str],
                 permissions: Mapping[str, frozenset[str]] | None = None) -> Refusal | None:
    """The refusals that need no facts: unknown command, not permitted, wrong state."""
    rule = RULES.get(command)
    if rule is None:
        return Refusal(command, "unknown", f"'{command}' is not an RFC command")
    allowed = rule.roles
    if permissions is not None and command in permissions:
        allowed = permissions[command]
    if not permitted(actor_roles, allowed):
        who = " or ".join(role_words(allowed)) or "nobody"
        return Refusal(command, "not_permitted", f"only {who} may use `/rfc {command}`")
    if state not in rule.from_states:
        where = ", ".join(_state_words(rule.from_states))
        return Refusal(command, "wrong_state",
                       f"the RFC is {state_word(state)}; `/rfc {command}` works only when it is "
                       f"{where}")
    return None


def decide(state: str, command: str, actor_roles: Iterable[str], facts: Facts,
           permissions: Mapping[str, frozenset[str]] | None = None) -> Transition | Refusal:
    """Apply the table: permission first, then state, then guards."""
    early = refuse_early(state, command, actor_roles, permissions)
    if early is not None:
        return early
    rule = RULES[command]
    for guard in rule.guards:
        reason = guard(facts)
        if reason:
            return Refusal(command, "guard", reason)
    target = rule.to_state or state
    return Transition(command, state, target, _new_period_end(command, state, facts),
                      facts.concern)


def _new_period_end(command: str, state: str, facts: Facts) -> datetime | None:
    if command == "open":
        return facts.now + facts.period_length
    if command == "extend" and facts.duration is not None:
        if state == OPEN and facts.period_ends is not None:
            return max(facts.period_ends, facts.now) + facts.duration
        return facts.now + facts.duration
    return None


def state_word(state: str) -> str:
    return state.replace("_", " ")


def _state_words(states: Iterable[str]) -> list[str]:
    return [state_word(s) for s in STATES if s in set(states)]


def role_words(roles: Iterable[str]) -> list[str]:
    words = {AUTHOR: "the RFC's authors", COMMITTEE: "committee members",
             BINDING_VOTER: "binding voters", ANYONE: "anyone", BOT: "the bot"}
    return [words[r] for r in (AUTHOR, COMMITTEE, BINDING_VOTER, ANYONE, BOT) if r in set(roles)]


@dataclass(frozen=True)
class HelpLine:
    command: str
    summary: str
    states: str
    who: str


def help_lines(permissions: Mapping[str, frozenset[str]] | None = None) -> list[HelpLine]:
    """`/rfc help` and the unknown-command answer list these, straight from the table."""
    perms = permissions or default_permissions()
    out = []
    for rule in TABLE:
        if rule.command == PERIOD_END:
            continue
        arg = {"extend": " <duration>", "concern": " <name>", "resolve": " <name>"}.get(
            rule.command, "")
        out.append(HelpLine(f"/rfc {rule.command}{arg}", rule.summary,
                            ", ".join(_state_words(rule.from_states)),
                            ", ".join(role_words(perms.get(rule.command, rule.roles)))))
    return out


@dataclass
class Machine:
    """A running fold of transitions, used to replay an RFC's recorded history."""

    state: str = DRAFT
    period_ends: datetime | None = None
    concerns: dict[str, bool] = field(default_factory=dict)  # name -> resolved?

    def apply(self, transition: Transition) -> None:
        self.state = transition.to_state
        if transition.period_ends is not None:
            self.period_ends = transition.period_ends
        if transition.command == "concern":
            self.concerns[transition.concern] = False
        elif transition.command == "resolve":
            self.concerns[transition.concern] = True

    @property
    def unresolved(self) -> tuple[str, ...]:
        return tuple(name for name, done in self.concerns.items() if not done)
