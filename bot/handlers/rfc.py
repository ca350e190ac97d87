"""RFC pull requests on GitHub: commands, votes, the status comment, labels, front matter.

Every event on an RFC pull request (and every tick) runs the same ``sync``: read what
GitHub holds, replay the ledger with any new commands, then make labels, the status
comment, the check run and the front matter say so. Nothing depends on which event came
or in which order, so a redelivered event finds nothing to do, and when two events race
the one that writes last re-reads and finishes the other's work.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.config import Config
from bot.durations import parse_duration, shown_time
from bot.errors import CvfError
from bot.events import Event, OwnCommit, router
from bot.github.port import (
    CheckRunOutput,
    Comment,
    GitHubError,
    GitHubPort,
    PullRequest,
    TeamLookupError,
)
from bot.handlers.answers import Answers
from bot.markdown import Md, code, escape_md, md, mention
from bot.replies import did_you_mean, reply_body
from bot.rfc import lifecycle
from bot.rfc.discussion import Discussion, summarize
from bot.rfc.document import DocumentError, RfcDocument, parse_rfc, update_front_matter
from bot.rfc.lifecycle import (
    ACCEPTED,
    AUTHOR,
    BINDING_VOTER,
    COMMITTEE,
    LIFECYCLE_COMMANDS,
    OPEN,
    REJECTED,
    Facts,
    Machine,
    help_lines,
    permissions_from_config,
    state_word,
)
from bot.rfc.lint import lint_texts
from bot.rfc.projection import front_matter_changes
from bot.rfc.record import (
    APPLIED,
    LEDGER_MARKER,
    Entry,
    Ledger,
    Pending,
    fold,
    iso,
    replay,
)
from bot.rfc.slash import RFC_SUBCOMMANDS, VOTE_WORDS, Command, parse_commands
from bot.rfc.status import (
    STATUS_MARKER,
    build_view,
    concern_raisers,
    plural,
    reactions_seen_in,
    render_status,
    waiting_on,
)
from bot.rfc.tally import (
    COMMENT_SOURCE,
    Signal,
    Tally,
    VoteRule,
    reaction_signals,
    reactions_seen,
    tally,
)
from bot.templating import render

log = logging.getLogger("cvf.rfc")

CHECK_NAME = "cvf/rfc"
PROBLEM_MARKER = "<!-- cvf:rfc-problem -->"
# Lint rules that need the whole RFC folder; a pull request shows one file, so these are
# left to `cvf rfc lint` in CI.
CROSS_FILE_RULES = frozenset({"RFC-012", "RFC-013", "RFC-014"})
MAX_ROUNDS = 3


# -- small helpers ------------------------------------------------------------------------
def _bot_login(config: Config) -> str:
    return str(config.section("github")["bot_login"])


def is_self(login: str, config: Config) -> bool:
    me = _bot_login(config).lower()
    login = login.lower()
    return login == me or login == me.removesuffix("[bot]")


def _is_bot_login(login: str, config: Config) -> bool:
    return is_self(login, config) or login.lower().endswith("[bot]")


def _vote_reactions(gh: GitHubPort, config: Config, number: int) -> list[Signal]:
    """The reactions on a pull request that cast votes (the bot's own never do)."""
    return reaction_signals(gh.list_issue_reactions(number), config.rfc["reactions"],
                            lambda login: _is_bot_login(login, config))


def _marker(kind: str, *parts: object) -> str:
    return f"<!-- cvf:rfc-{kind}:{':'.join(str(p) for p in parts)} -->"


def _short(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10]


def rfc_paths(files: Iterable[Any], directory: str) -> list[str]:
    """RFC files a pull request adds or changes (not the index or the template)."""
    prefix = directory.strip("/") + "/"
    out = []
    for f in files:
        name = f.filename
        if f.status == "removed" or not name.startswith(prefix) or not name.endswith(".md"):
            continue
        if "/" in name[len(prefix):] or name.rsplit("/", 1)[-1] in ("README.md",
                                                                     "0000-template.md"):
            continue
        out.append(name)
    return sorted(out)


@dataclass
class Committee:
    """Committee members resolved from config users and teams; failures are kept, not hidden."""

    members: set[str] = field(default_factory=set)
    shown: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    teams: dict[str, list[str]] = field(default_factory=dict)  # "org/team" -> its logins
    unread_teams: list[str] = field(default_factory=list)

    def has(self, login: str) -> bool:
        return login.lower() in self.members


def resolve_committee(gh: GitHubPort, config: Config,
                      cache: dict[str, Committee] | None = None) -> Committee:
    if cache is not None and "committee" in cache:
        return cache["committee"]
    section = config.rfc["committee"]
    result = Committee()
    names: dict[str, str] = {}
    for login in section.get("users", []):
        names.setdefault(login.lower(), login)
        result.mentions.append(mention(login))
    for slug in section.get("teams", []):
        org, _, team = slug.partition("/")
        result.mentions.append(mention(slug))
        try:
            members = list(gh.team_members(org, team))
            result.teams[slug] = members
            for login in members:
                names.setdefault(login.lower(), login)
        except TeamLookupError as exc:
            result.unread_teams.append(slug)
            result.errors.append(f"committee team {slug} could not be read, so its members "
                                 f"count as non-binding until it can: {exc}")
    names = {k: v for k, v in names.items() if not is_self(v, config)}
    result.members = set(names)
    result.shown = sorted(names.values(), key=str.lower)
    if cache is not None:
        cache["committee"] = result
    return result


def roles_for(login: str, authors: Iterable[str], committee: Committee,
              certified: Callable[[str], bool] = lambda login: True) -> frozenset[str]:
    roles = set()
    if login.lower() in {a.lower() for a in authors}:
        roles.add(AUTHOR)
    if committee.has(login):
        roles.add(COMMITTEE)
        if certified(login):
            roles.add(BINDING_VOTER)
    return frozenset(roles)


def vote_level(config: Config, rfc_type: str | None) -> str | None:
    """The certification a binding vote needs for this RFC type (``certification.gates``)."""
    rules = config.section("certification").get("gates", {}).get("rfc_votes") or {}
    level = rules.get(rfc_type or "", rules.get("default"))
    return str(level) if level else None


def certification_check(gh: GitHubPort, config: Config, now: datetime, rfc_type: str | None,
                        errors: list[str]) -> Callable[[str], bool]:
    """``check(login)``: does certification allow this login's vote to bind? Asks the
    certification concern's one function; if it cannot answer, nobody's vote binds and
    the status comment says why (never a silent pass)."""
    if vote_level(config, rfc_type) is None:
        return lambda login: True
    from bot.handlers.certification import rfc_vote_check

    check = rfc_vote_check(config, gh, now)
    answers: dict[str, bool] = {}

    def certified(login: str) -> bool:
        key = login.lower()
        if key not in answers:
            try:
                answers[key] = bool(check(login, rfc_type or "default"))
            except (CvfError, GitHubError) as exc:
                answers[key] = False
                message = f"certification could not be checked, so no vote is binding: {exc}"
                if message not in errors:
                    errors.append(message)
        return answers[key]

    return certified


# -- reading GitHub -----------------------------------------------------------------------
@dataclass
class Snapshot:
    """Everything one sync reads, once."""

    pull: PullRequest
    path: str
    text: str | None
    document: RfcDocument | None
    lint_errors: list[str]
    comments: list[Comment]
    status_comment: Comment | None
    ledger: Ledger
    signals: list[Signal]
    discussion: Discussion
    committee: Committee
    authors: tuple[str, ...]
    own: list[Comment] = field(default_factory=list)  # comments this bot wrote

    def bot_comment_with(self, marker: str) -> Comment | None:
        """This bot's comment starting with ``marker`` (no user or other app can fake it)."""
        for comment in self.own:
            if comment.body.startswith(marker):
                return comment
        return None


@dataclass
class SyncResult:
    number: int
    state: str = ""
    is_rfc: bool = False
    new_entries: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _own_comments(comments: list[Comment], config: Config) -> list[Comment]:
    # The login alone is not enough: a user account named like the App without "[bot]"
    # must not be able to plant a status comment (and its ledger) the bot would trust.
    return [c for c in comments if c.author_is_bot and is_self(c.author, config)]


def _status_comment(own: list[Comment]) -> Comment | None:
    """The RFC status comment among the bot's own comments."""
    return next((c for c in own if c.body.startswith(STATUS_MARKER)), None)


def _read(gh: GitHubPort, config: Config, pull: PullRequest, path: str,
          cache: dict[str, Committee] | None) -> Snapshot:
    rfc = config.rfc
    content = gh.get_file(path, ref=pull.head_sha)
    text = content.text if content is not None else None
    document = None
    lint_errors: list[str] = []
    if text is not None:
        try:
            document = parse_rfc(text, path=path)
        except DocumentError:
            document = None  # lint reports why, with the line
        result = lint_texts({path: text}, types=rfc["types"])
        lint_errors = [d.text().splitlines()[0] for d in result.errors
                       if d.rule not in CROSS_FILE_RULES]
    comments = gh.list_issue_comments(pull.number)
    own = _own_comments(comments, config)
    status_comment = _status_comment(own)
    ledger = Ledger.decode(status_comment.body) if status_comment else Ledger()
    authors = tuple(dict.fromkeys([pull.author, *(document.authors if document else ())]))
    committee = resolve_committee(gh, config, cache)

    def bot(login: str) -> bool:
        return _is_bot_login(login, config)

    signals = _vote_reactions(gh, config, pull.number)
    for comment in comments:
        if comment.author_is_bot or bot(comment.author):
            continue
        for command in parse_commands(comment.body):
            if command.kind == "vote" and command.error is None:
                signals.append(Signal(comment.author, command.name, comment.updated_at,
                                      COMMENT_SOURCE, comment.id, command.argument))
    review_comments = gh.list_review_comments(pull.number)
    discussion = summarize(comments, review_comments, rfc_path=path, authors=authors,
                           is_bot=bot)
    return Snapshot(pull=pull, path=path, text=text, document=document,
                    lint_errors=lint_errors, comments=comments, status_comment=status_comment,
                    ledger=ledger, signals=signals, discussion=discussion,
                    committee=committee, authors=authors, own=own)


def _period_length(config: Config, rfc_type: str | None) -> timedelta:
    periods = config.rfc["comment_period"]
    raw = periods.get(rfc_type or "") or periods.get("default") or "14d"
    return parse_duration(str(raw))


# -- the sync -----------------------------------------------------------------------------
def sync(gh: GitHubPort, config: Config, number: int, *, now: datetime,
         trigger: int | None = None, closed_by: str = "",
         cache: dict[str, Committee] | None = None, refresh_check: bool = False) -> SyncResult:
    """Bring one pull request's RFC governance up to date; safe to run any number of times."""
    cache = {} if cache is None else cache
    result = SyncResult(number)
    for _ in range(MAX_ROUNDS):
        done = _sync_once(gh, config, number, now=now, trigger=trigger, closed_by=closed_by,
                          cache=cache, result=result, refresh_check=refresh_check)
        if done:
            break
    return result


def _sync_once(gh: GitHubPort, config: Config, number: int, *, now: datetime,
               trigger: int | None, closed_by: str, cache: dict[str, Committee],
               result: SyncResult, refresh_check: bool) -> bool:
    rfc = config.rfc
    writes_before = gh.stats.writes
    pull = gh.get_pull(number)
    paths = rfc_paths(gh.list_pull_files(number), rfc["directory"])
    if not paths:
        if trigger is not None:
            _answer_non_rfc(gh, config, number, trigger)
        return True
    result.is_rfc = True
    if len(paths) > 1:
        _report_many(gh, pull, paths)
        return True
    snap = _read(gh, config, pull, paths[0], cache)
    doc = snap.document
    rfc_type = doc.type if doc else None
    rule = replace(VoteRule.from_config(rfc, rfc_type), binding_level=vote_level(config, rfc_type))
    permissions = permissions_from_config(rfc)
    period_length = _period_length(config, rfc_type)
    gate_errors: list[str] = []
    certified = certification_check(gh, config, now, rfc_type, gate_errors)

    def binding(login: str) -> bool:
        return snap.committee.has(login) and certified(login)

    def bot(login: str) -> bool:
        return _is_bot_login(login, config)

    tallies: dict[tuple[datetime | None, int | None], Tally] = {}

    def tally_until(cutoff: datetime | None, until_comment: int | None = None) -> Tally:
        key = (cutoff, until_comment)
        if key not in tallies:
            tallies[key] = tally(snap.signals, rule=rule, is_binding=binding,
                                 period_ends=cutoff,
                                 binding_voters=[m for m in snap.committee.shown
                                                 if certified(m)],
                                 is_bot=bot, until_comment=until_comment)
        return tallies[key]

    def facts_for(machine: Machine, at: datetime, command: Command | None,
                  comment_id: int | None) -> Facts:
        if machine.period_ends and machine.period_ends < at:
            current = tally_until(machine.period_ends)
        else:
            current = tally_until(at, comment_id)
        return Facts(now=at, period_ends=machine.period_ends, period_length=period_length,
                     duration=command.duration if command else None,
                     concern=command.argument if command else "",
                     quorum_met=current.outcome.quorum_met,
                     threshold_met=current.outcome.threshold_met,
                     rule_text=rule.describe(), unresolved_concerns=machine.unresolved,
                     unanswered_threads=len(snap.discussion.unanswered),
                     require_answered_threads=bool(rfc["require_answered_threads"]),
                     lint_errors=len(snap.lint_errors))

    pending: list[Pending] = []
    for comment in snap.comments:
        if comment.author_is_bot or bot(comment.author):
            continue
        roles = roles_for(comment.author, snap.authors, snap.committee, certified)
        for command in parse_commands(comment.body):
            if command.kind == "rfc" and command.error is None \
                    and command.name in LIFECYCLE_COMMANDS:
                pending.append(Pending(comment.id, comment.author, comment.created_at, command,
                                       roles))
    closed_at = None
    if pull.state == "closed" and not pull.merged:
        closed_at = now
        if any(e.command == "close" for e in snap.ledger.history):
            closed_at = None
    outcome = replay(snap.ledger, pending, now=now, facts_for=facts_for,
                     permissions=permissions, closed_at=closed_at, closed_by=closed_by)
    ledger = outcome.ledger
    for entry in outcome.new_entries:
        if entry.outcome == APPLIED and entry.to_state in (ACCEPTED, REJECTED) \
                and entry.from_state != entry.to_state:
            ends = outcome.machine.period_ends
            final = tally_until(ends) if ends and ends < entry.when \
                else tally_until(entry.when, entry.comment_id)
            entry.tally = final.counts()
            voters = [v.login for v in final.voters if v.binding and v.option]
            entry.deciders = sorted(set(voters) | {entry.by}, key=str.lower)
    machine = outcome.machine
    state = machine.state
    result.state = state
    result.new_entries.extend(outcome.new_entries)
    current = tally_until(machine.period_ends)

    # 1. Answer the people first, so a crash after this point only repeats idempotent writes.
    _answer(gh, config, snap, outcome.new_entries, machine, trigger, permissions, ledger)
    _clock_comments(gh, config, snap, outcome.new_entries, machine, current, now, permissions)

    # 2. The projections: status comment, labels, check run, front matter.
    resolved = sorted(n for n, done in machine.concerns.items() if done)
    view = build_view(number=number, title=pull.title, rfc_path=snap.path,
                      rfc_type=rfc_type or "?", state=state, now=now,
                      period_ends=machine.period_ends, tally=current,
                      discussion=snap.discussion, unresolved=list(machine.unresolved),
                      resolved=resolved, late_concerns=outcome.late_concerns,
                      errors=snap.committee.errors + gate_errors + snap.lint_errors,
                      require_answered=bool(rfc["require_answered_threads"]), ledger=ledger,
                      reactions_seen=reactions_seen(snap.signals),
                      resolvers=permissions.get("resolve"))
    body = render_status(view)
    if snap.status_comment is None or snap.status_comment.body != body:
        gh.upsert_sticky_comment(number, STATUS_MARKER, body)
    _labels(gh, config, pull, state)
    commit = _front_matter(gh, config, pull, snap, machine, ledger)
    if commit and pull.state == "open":
        # The bot's commit is the branch's new head; every required check must be on it (a
        # push made with an Action's token starts no new workflow run, and the bot's own
        # synchronize event is ignored).
        _check(gh, replace(pull, head_sha=commit), snap, state)
        _after_own_commit(gh, config, number, now, OwnCommit(parent=pull.head_sha, sha=commit))
    elif refresh_check or any(e.from_state != e.to_state for e in outcome.new_entries):
        # Check runs cannot be read through the port; write only when something moved, so
        # a redelivered comment event writes nothing at all.
        _check(gh, pull, snap, state)
    _problem_comment(gh, snap)

    # 3. Did someone else write meanwhile? Re-read; the last writer finishes the job. (A
    # sync that wrote nothing cannot have overwritten anyone, so it need not look.)
    if gh.stats.writes == writes_before:
        return True
    return _settled(gh, config, number, snap, body)


def _after_own_commit(gh: GitHubPort, config: Config, number: int, now: datetime,
                      own: OwnCommit) -> None:
    """The other concerns put their checks on the bot's commit (the RFC check is there)."""
    event = Event(name="own_commit", payload={"repository": {"full_name": gh.repo}},
                  config=config, now=now)
    for refresh in router.refreshers(config):
        if refresh is refresh_rfc_check:
            continue
        try:
            refresh(event, gh, number, own)
        except GitHubError as exc:
            # A redelivery would find the front matter written and commit nothing, so this
            # is the one chance to put the check on the bot's commit: try once more (it
            # re-reads what the failed attempt may have written), then fail loudly.
            log.warning("putting a check on %s of #%s failed, trying again: %s",
                        own.sha[:7], number, exc)
            refresh(event, gh, number, own)


@router.check(lambda config: CHECK_NAME)
def refresh_rfc_check(event: Event, gh: GitHubPort, number: int,
                      own_commit: OwnCommit | None) -> None:
    sync(gh, event.config, number, now=event.now, refresh_check=True)


def _settled(gh: GitHubPort, config: Config, number: int, snap: Snapshot, body: str) -> bool:
    if getattr(gh, "dry_run", False):
        return True  # nothing was written, so there is nothing to compare
    again = gh.list_issue_comments(number)
    before = {(c.id, c.updated_at) for c in snap.comments if not is_self(c.author, config)}
    after = {(c.id, c.updated_at) for c in again if not is_self(c.author, config)}
    status = _status_comment(_own_comments(again, config))
    return after <= before and (status is None or status.body == body)


# -- answers ------------------------------------------------------------------------------
def _reply(gh: GitHubPort, snap: Snapshot, number: int, marker: str, text: str) -> None:
    if snap.bot_comment_with(marker) is not None:
        return
    # Posted as a sticky comment: two workers answering the same command at once (GitHub
    # redelivering while the first is still busy) converge on one reply.
    gh.upsert_sticky_comment(number, marker, text if text.startswith(marker)
                             else f"{marker}\n{text}")


def _respond(answers: Answers, marker: str, comment: Comment, line: str, reason: str, *,
             instead: str | None = None, more: Md | None = None) -> None:
    """Answer one command in the shared reply format (bot.replies), within the person's
    budget of answers (bot.handlers.answers)."""
    answers.add(comment.author, marker,
                reply_body(marker, comment.author, reason, quote=line, url=comment.html_url,
                           instead=instead, more=more))


# Commands that belong together: a misspelt one is answered with its family only.
_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("accept", "reject", "postpone", "withdraw"),
    ("open", "review", "extend"),
    ("concern", "resolve"),
    ("status", "help"),
)


def _family_help(name: str, permissions: dict[str, frozenset[str]]) -> Md:
    family = next((f for f in _FAMILIES if name in f), ())
    lines = [line for line in help_lines(permissions)
             if line.command.split()[1] in family]
    rows = [md("- {}: {} ({}; {})", code(line.command), line.summary, line.states, line.who)
            for line in lines]
    if name in ("status", "help"):
        rows = [Md("- `/rfc status`: refresh the status comment"),
                Md("- `/rfc help`: list every RFC command")]
    return Md("\n".join([*rows, "", "All commands: `/rfc help`."]))


def _not_understood(command: Command, permissions: dict[str, frozenset[str]]
                    ) -> tuple[Md, str | None, Md | None]:
    """(reason, instead, more) for a malformed command: "did you mean" and its family."""
    reason = Md(f"not understood: {command.error}.")
    if command.kind == "rfc" and command.name and command.name not in RFC_SUBCOMMANDS:
        guess = did_you_mean(command.name, RFC_SUBCOMMANDS)
        if guess:
            rest = f" {command.argument}" if command.argument else ""
            return (md("{} is not an RFC command. Did you mean {}?",
                       code(f"/rfc {command.name}"), code(f"/rfc {guess}{rest}")),
                    None, _family_help(guess, permissions))
        return reason, None, Md(_help_text(permissions))
    if command.kind == "vote" and command.name and command.name not in VOTE_WORDS:
        guess = did_you_mean(command.name, [w for w in VOTE_WORDS if "_" not in w])
        if guess:
            return (md("{} is not a vote option. Did you mean {}?",
                       code(f"/vote {command.name}"), code(f"/vote {guess}")),
                    None, Md("Votes: `/vote approve`, `/vote request-changes`, `/vote reject`, "
                             "`/vote abstain` (a reason may follow), `/vote retract`."))
    return reason, None, None


def _answer(gh: GitHubPort, config: Config, snap: Snapshot, new: list[Entry],
            machine: Machine, trigger: int | None,
            permissions: dict[str, frozenset[str]], ledger: Ledger | None = None) -> None:
    answers = Answers(gh, snap.pull.number, snap.comments, snap.own)
    by_comment = {c.id: c for c in snap.comments}
    for entry in new:
        comment = by_comment.get(entry.comment_id)
        if comment is None:
            continue
        if entry.outcome == APPLIED:
            reaction = "rocket" if entry.from_state != entry.to_state else "+1"
            gh.add_comment_reaction(comment.id, reaction)
        else:
            line = _line_of(comment, entry)
            instead: Md | None = None
            if entry.reason.startswith("unresolved concerns"):
                names = [n.strip() for n in entry.reason.split(":", 1)[1].split(",")]
                raisers = concern_raisers(Ledger([*snap.ledger.entries, *new],
                                                 snap.ledger.base))
                instead = Md(f"the RFC waits for "
                             f"{waiting_on(names, raisers, permissions.get('resolve'))}; "
                             f"then write {code('/rfc ' + entry.command)} again.")
            _respond(answers, _marker("reply", comment.id, _short(entry.key)), comment,
                     line, Md(f"not done: {entry.reason}."), instead=instead)
    # Malformed commands anywhere (answered once each), and the triggering comment's
    # votes, `status` and `help`.
    for comment in snap.comments:
        if comment.author_is_bot or _is_bot_login(comment.author, config):
            continue
        for command in parse_commands(comment.body):
            if command.error is not None:
                key = _short(f"{command.line_no}:{command.line}")
                reason, hint, more = _not_understood(command, permissions)
                _respond(answers, _marker("reply", comment.id, key), comment, command.line,
                         reason, instead=hint, more=more)
            elif comment.id == trigger:
                # A late or redelivered event is judged by the state when the comment was
                # written, not by what happened since.
                then = _state_at(ledger, comment.updated_at) if ledger is not None else machine
                _answer_trigger(gh, config, answers, comment, command, then, permissions)
    # One comment per person at most, within their budget (bot.handlers.answers).
    answers.flush()


def _state_at(ledger: Ledger, at: datetime) -> Machine:
    """The RFC's state as the recorded history stood at ``at``.

    Entries folded into the ledger's base are older than every kept entry, so the base is
    the earliest state the ledger still knows; a comment older than that is judged by it.
    """
    kept = [e for e in ledger.entries if e.when <= at]
    machine, _ = fold(replace(ledger, entries=kept))
    return machine


def _line_of(comment: Comment, entry: Entry) -> str:
    for command in parse_commands(comment.body):
        if command.kind == "rfc" and command.name == entry.command \
                and command.argument == entry.argument:
            return command.line
    return f"/rfc {entry.command} {entry.argument}".strip()


def _react_once(gh: GitHubPort, config: Config, comment_id: int, content: str) -> None:
    """A redelivered event must not even repeat a reaction: look before writing."""
    for reaction in gh.list_comment_reactions(comment_id):
        if reaction.content == content and is_self(reaction.user, config):
            return
    gh.add_comment_reaction(comment_id, content)


def _answer_trigger(gh: GitHubPort, config: Config, answers: Answers, comment: Comment,
                    command: Command, machine: Machine,
                    permissions: dict[str, frozenset[str]]) -> None:
    if command.kind == "rfc" and command.name == "help":
        answers.add(comment.author, _marker("help", comment.id), _help_text(permissions))
        _react_once(gh, config, comment.id, "+1")
    elif command.kind == "rfc" and command.name == "status":
        _react_once(gh, config, comment.id, "+1")
    elif command.kind == "vote":
        ends = machine.period_ends
        late = ends is not None and machine.state != OPEN and comment.updated_at > ends
        final = machine.state in lifecycle.FINAL_STATES or machine.state == "postponed"
        if late or final:
            why = (f"the comment period ended {shown_time(ends)}" if late and ends
                   else f"the RFC is {state_word(machine.state)}")
            _respond(answers, _marker("vote", comment.id, _short(command.line)), comment,
                     command.line, f"your vote is shown in the status comment but not "
                     f"counted: {why}.",
                     instead=None if final else "a committee member can reopen voting with "
                     "`/rfc extend 7d`; then vote again.")
        else:
            _react_once(gh, config, comment.id, "+1")


def _help_text(permissions: dict[str, frozenset[str]]) -> str:
    return render("rfc/help.md.j2", lines=help_lines(permissions))


def _answer_non_rfc(gh: GitHubPort, config: Config, number: int, trigger: int) -> None:
    comments = gh.list_issue_comments(number)
    comment = next((c for c in comments if c.id == trigger), None)
    if comment is None or comment.author_is_bot or _is_bot_login(comment.author, config):
        return
    commands = [c for c in parse_commands(comment.body) if c.kind == "rfc" or c.kind == "vote"]
    if not commands:
        return
    marker = _marker("not-rfc", comment.id)
    directory = config.rfc["directory"]
    # Within the person's budget of answers, like every answer on an RFC.
    answers = Answers(gh, number, comments, _own_comments(comments, config))
    answers.add(comment.author, marker, reply_body(
        marker, comment.author, md("not done: this pull request changes no RFC file under {}, "
                                   "so RFC commands do not apply here.",
                                   code(f"{directory}/")),
        quote=commands[0].line, url=comment.html_url,
        instead=md("add or change one RFC file under {} in this pull request, or open a "
                   "new one for the RFC.", code(f"{directory}/"))))
    answers.flush()


def reminder_mentions(committee: Committee, not_voted: Iterable[str]) -> str:
    """Who a reminder pings: only binding voters who have not voted, teams expanded to
    their people. A team is named (not pinged) while some of its members have not voted;
    a team the bot could not read is pinged, since nobody can tell who in it voted."""
    waiting = {login.lower(): login for login in not_voted}
    in_teams = {m.lower() for members in committee.teams.values() for m in members}
    parts = [mention(login) for key, login in waiting.items() if key not in in_teams]
    for slug, members in committee.teams.items():
        left = [waiting[m.lower()] for m in members if m.lower() in waiting]
        if left:
            parts.append(md("{} ({})", slug, Md(" ".join(mention(m) for m in left))))
    parts += [mention(slug) for slug in committee.unread_teams]
    return " ".join(parts)


def _clock_comments(gh: GitHubPort, config: Config, snap: Snapshot, new: list[Entry],
                    machine: Machine, current: Tally, now: datetime,
                    permissions: dict[str, frozenset[str]] | None = None) -> None:
    number = snap.pull.number
    mentions = " ".join(snap.committee.mentions)
    for entry in new:
        if entry.command == lifecycle.PERIOD_END and entry.outcome == APPLIED:
            unresolved = list(machine.unresolved)
            waits = (waiting_on(unresolved, concern_raisers(Ledger(
                         [*snap.ledger.entries, *new], snap.ledger.base)),
                                (permissions or {}).get("resolve")) if unresolved else None)
            _reply(gh, snap, number, _marker("review", entry.at),
                   render("rfc/period-ended.md.j2", mentions=mentions,
                          ends=shown_time(entry.at), waits=waits,
                          outcome=current.outcome, rule=current.rule.describe()))
    reminder = config.rfc["reminder_before"]
    ends = machine.period_ends
    if reminder and machine.state == OPEN and ends is not None:
        before = parse_duration(str(reminder))
        who = reminder_mentions(snap.committee, current.binding_not_voted)
        if who and ends - before <= now < ends:
            _reply(gh, snap, number, _marker("reminder", iso(ends)),
                   render("rfc/reminder.md.j2", ends=shown_time(ends), mentions=who))


# -- projections --------------------------------------------------------------------------
def _labels(gh: GitHubPort, config: Config, pull: PullRequest, state: str) -> None:
    names = config.rfc["labels"]
    wanted = names[state]
    have = {label.lower() for label in pull.labels}
    for other_state, label in names.items():
        if other_state != state and label.lower() in have:
            gh.remove_label(pull.number, label)
    if wanted.lower() not in have:
        gh.add_labels(pull.number, [wanted])


def _check(gh: GitHubPort, pull: PullRequest, snap: Snapshot, state: str) -> None:
    if pull.state != "open":
        return
    if snap.lint_errors:
        output = CheckRunOutput(title=f"{plural(len(snap.lint_errors), 'lint error')} in "
                                      f"{snap.path}",
                                summary="\n".join(f"- {escape_md(e)}"
                                                  for e in snap.lint_errors[:50]))
        conclusion = "failure"
    else:
        output = CheckRunOutput(title=f"RFC {state_word(state)}",
                                summary=md("{} is {}.", code(snap.path), state_word(state)))
        conclusion = "success"
    gh.set_check_run(pull.head_sha, CHECK_NAME, status="completed", conclusion=conclusion,
                     output=output)


def _report_many(gh: GitHubPort, pull: PullRequest, paths: list[str]) -> None:
    body = render("rfc/problem.md.j2", marker=PROBLEM_MARKER, paths=paths, path="",
                  errors=[], resolved=False)
    gh.upsert_sticky_comment(pull.number, PROBLEM_MARKER, body)
    if pull.state == "open":
        gh.set_check_run(pull.head_sha, CHECK_NAME, status="completed", conclusion="failure",
                         output=CheckRunOutput(
                             title=f"{len(paths)} RFCs in one pull request",
                             summary="One pull request may add or change one RFC: "
                                     + ", ".join(code(p) for p in paths)))


def _problem_comment(gh: GitHubPort, snap: Snapshot) -> None:
    """Lint problems get one comment, edited in place (and marked fixed when they are)."""
    existing = snap.bot_comment_with(PROBLEM_MARKER)
    if not snap.lint_errors and existing is None:
        return
    body = render("rfc/problem.md.j2", marker=PROBLEM_MARKER, paths=[], path=snap.path,
                  errors=snap.lint_errors, resolved=not snap.lint_errors)
    if existing is None or existing.body != body:
        gh.upsert_sticky_comment(snap.pull.number, PROBLEM_MARKER, body)


def _decision_entry(ledger: Ledger, state: str) -> Entry | None:
    for entry in reversed(ledger.history):
        if entry.outcome == APPLIED and entry.to_state == state and entry.from_state != state:
            return entry
    return None


def _front_matter(gh: GitHubPort, config: Config, pull: PullRequest, snap: Snapshot,
                  machine: Machine, ledger: Ledger) -> str | None:
    """Commit the state into the RFC's front matter: on the PR branch when the bot may push
    there, else (fork PRs) on the base branch once the PR is merged. Returns the commit."""
    if snap.document is None or (snap.lint_errors and pull.state == "open"):
        return None
    if pull.state == "open":
        if pull.is_fork:
            return None
        branch = pull.head_ref
    elif pull.merged:
        branch = pull.base_ref
    else:
        return None
    decision = _decision_entry(ledger, machine.state)
    url = pull.html_url

    def change(current: str | None) -> str | None:
        if current is None:
            return None
        try:
            doc = parse_rfc(current, path=snap.path)
        except DocumentError:
            return None
        changes = front_matter_changes(state=machine.state, period_ends=machine.period_ends,
                                       decision=decision, pull_url=url, current=doc.meta)
        if not changes:
            return None
        try:
            return update_front_matter(current, changes)
        except CvfError:
            return None

    message = f"RFC: record status {machine.state} (#{pull.number})"
    try:
        return gh.update_file(snap.path, branch, change, message)
    except GitHubError as exc:
        # A protected branch or a read-only token: the labels and the status comment still
        # hold the state, and the merge will write it.
        log.warning("could not write the front matter of %s on %s: %s", snap.path, branch, exc)
        return None


# -- routing ------------------------------------------------------------------------------
@router.register("pull_request", "opened", "reopened", "synchronize", "edited", "closed",
                 "ready_for_review", "labeled", "unlabeled")
def on_pull_request(event: Event, gh: GitHubPort) -> None:
    number = int((event.payload.get("pull_request") or {}).get("number") or
                 event.payload.get("number") or 0)
    if not number:
        return
    result = sync(gh, event.config, number, now=event.now, closed_by=event.sender,
                  refresh_check=True)
    _report(event, result)


@router.register("issue_comment", "created", "edited", "deleted")
def on_issue_comment(event: Event, gh: GitHubPort) -> None:
    issue = event.payload.get("issue") or {}
    if issue.get("pull_request") is None:
        return  # a comment on an issue, not on a pull request
    comment = event.payload.get("comment") or {}
    trigger = None
    if event.action in ("created", "edited"):
        trigger = comment.get("id") if isinstance(comment.get("id"), int) else None
    number = issue.get("number")
    if not isinstance(number, int) or number <= 0:
        return
    result = sync(gh, event.config, number, now=event.now, trigger=trigger)
    _report(event, result)


@router.register("pull_request_review_comment", "created", "edited", "deleted")
def on_review_comment(event: Event, gh: GitHubPort) -> None:
    pull = event.payload.get("pull_request") or {}
    if not pull.get("number"):
        return
    result = sync(gh, event.config, int(pull["number"]), now=event.now)
    _report(event, result)


def _report(event: Event, result: SyncResult) -> None:
    if result.is_rfc and result.state:
        event.outputs["rfc-status"] = result.state
        decided = [e for e in result.new_entries if e.to_state in (ACCEPTED, REJECTED)
                   and e.outcome == APPLIED and e.from_state != e.to_state]
        if decided:
            event.outputs["decision"] = decided[-1].to_state
        event.summary.append(f"RFC #{result.number}: {state_word(result.state)}")


@dataclass
class TickReport:
    checked: int = 0
    synced: list[SyncResult] = field(default_factory=list)


def tick_repository(gh: GitHubPort, config: Config, now: datetime) -> TickReport:
    """Move RFCs whose period ended to review, post due reminders, and count votes cast
    by reaction since the last sync (GitHub sends no webhook for reactions). Cheap when
    idle: one search per label, and a comment and a reaction listing per open RFC."""
    report = TickReport()
    label = config.rfc["labels"][OPEN]
    reminder = config.rfc["reminder_before"]
    before = parse_duration(str(reminder)) if reminder else None
    cache: dict[str, Committee] = {}
    for number in gh.search_open_pulls(label):
        report.checked += 1
        comments = gh.list_issue_comments(number)
        own = _own_comments(comments, config)
        status = _status_comment(own)
        if status is not None and LEDGER_MARKER in status.body:
            machine, _ = fold(Ledger.decode(status.body))
            ends = machine.period_ends
            if machine.state == OPEN and ends is not None:
                due = ends <= now
                if not due and before is not None and ends - before <= now:
                    due = not any(_marker("reminder", iso(ends)) in c.body for c in own)
                if not due:
                    seen = reactions_seen(_vote_reactions(gh, config, number))
                    due = seen != reactions_seen_in(status.body)
                if not due:
                    continue
        report.synced.append(sync(gh, config, number, now=now, cache=cache))
    return report


@router.tick
def on_tick(gh: GitHubPort, config: Config, now: datetime) -> None:
    tick_repository(gh, config, now)
