"""The one sticky status comment of an RFC pull request: everything a reader needs, in place.

``build_view`` turns the core's results into plain values; the template
(templates/rfc/status-comment.md.j2) lays them out. User-written text (titles, reasons,
concern names, thread excerpts) is escaped by the template's ``md``/``cell`` filters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.durations import shown_time
from bot.errors import CvfError
from bot.markdown import Md, code, md
from bot.rfc.discussion import Discussion
from bot.rfc.lifecycle import (
    ACCEPTED,
    DRAFT,
    OPEN,
    POSTPONED,
    REJECTED,
    REVIEW,
    WITHDRAWN,
    role_words,
    state_word,
)
from bot.rfc.record import APPLIED, Ledger, decided_at, deciders
from bot.rfc.tally import OPTION_WORDS, OPTIONS, Tally, format_share
from bot.templating import render

STATUS_MARKER = "<!-- cvf:rfc-status -->"
_REACTIONS = re.compile(r"<!-- cvf:rfc-reactions:([0-9a-f]+) -->")
MAX_VOTER_ROWS = 200
MAX_THREAD_ROWS = 30
MAX_NAMES = 50
STATE_TITLES = {DRAFT: "Draft", OPEN: "Open for comment", REVIEW: "In review",
                ACCEPTED: "Accepted", REJECTED: "Rejected", WITHDRAWN: "Withdrawn",
                POSTPONED: "Postponed"}


def _capped(names: list[str]) -> list[str]:
    if len(names) <= MAX_NAMES:
        return names
    return [*names[:MAX_NAMES], f"and {len(names) - MAX_NAMES} more"]


@dataclass
class StatusView:
    number: int
    title: str
    rfc_path: str
    rfc_type: str
    state: str
    state_label: str
    period_ends: str | None
    days_left: str | None
    period_over: bool
    rule: str
    rows: list[dict[str, Any]]
    voters: list[dict[str, Any]]
    hidden_voters: int
    not_voted: list[str]
    conflicting: list[dict[str, Any]]
    more_conflicting: int
    outcome: dict[str, Any]
    concerns: list[dict[str, Any]]
    discussion: dict[str, Any]
    threads: list[dict[str, Any]]
    errors: list[str]
    next_step: str
    chart: list[tuple[str, int]]
    decision: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    ledger: str = ""
    reactions_marker: str = ""  # the fingerprint of the votes by reaction, hidden


def days_left(now: datetime, ends: datetime | None) -> str | None:
    if ends is None:
        return None
    seconds = (ends - now).total_seconds()
    if seconds <= 0:
        return "ended"
    days, rest = divmod(int(seconds), 86400)
    hours = rest // 3600
    if days:
        return f"{days} day{'s' if days != 1 else ''}, {hours} h left"
    return f"{hours} h {rest % 3600 // 60} min left"


def plural(count: int, word: str, words: str | None = None) -> str:
    """``plural(1, "comment")`` -> "1 comment"; 0 and many take the plural."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def concern_raisers(ledger: Ledger) -> dict[str, str]:
    """Who raised each concern: the latest applied ``/rfc concern`` for the name."""
    return {**ledger.base.raisers, **{e.argument: e.by for e in ledger.entries
                                      if e.command == "concern" and e.outcome == APPLIED}}


def waiting_on(unresolved: list[str], raisers: dict[str, str],
               resolvers: frozenset[str] | None = None) -> Md:
    """"the blocking concern naming (raised by alice); committee members resolve it with
    `/rfc resolve naming` once addressed" -- said wherever an RFC waits for one."""
    parts = [md("{} (raised by {})", n, raisers[n]) if n in raisers else md("{}", n)
             for n in unresolved]
    who = " or ".join(role_words(resolvers or frozenset({"committee"}))) or "nobody"
    first = unresolved[0] if re.fullmatch(r"[\w .-]+", unresolved[0]) else "<name>"
    return Md(f"the blocking concern{'s' if len(parts) > 1 else ''} {', '.join(parts)}; "
              f"{who} resolve{'s' if who == 'nobody' else ''} "
              f"{'them' if len(parts) > 1 else 'it'} with "
              f"{code('/rfc resolve ' + first)} once addressed")


def next_step(state: str, tally: Tally, unresolved: list[str], unanswered: int,
              require_answered: bool, period_ends: str | None,
              raisers: dict[str, str] | None = None,
              resolvers: frozenset[str] | None = None) -> Md:
    waits = waiting_on(unresolved, raisers or {}, resolvers) if unresolved else None
    if state == DRAFT:
        return Md("An author or a committee member writes `/rfc open` to start the comment "
                  "period.")
    if state == OPEN:
        text = (f"Comment and vote until {period_ends}; the RFC then moves to review "
                "on its own.")
        return Md(text + (f" It cannot be accepted while it waits for {waits}." if waits
                          else ""))
    if state == REVIEW:
        if waits:
            thread_note = (f" The {plural(unanswered, 'unanswered review thread')} also need"
                           f"{'s' if unanswered == 1 else ''} an author's reply."
                           if require_answered and unanswered else "")
            return Md(f"The RFC waits for {waits}; `/rfc accept` is refused until then."
                      + thread_note)
        if not tally.outcome.quorum_met:
            return Md("The quorum is not met. The committee can reopen voting with "
                      "`/rfc extend 7d`, or `/rfc postpone` the RFC.")
        if tally.outcome.decision == "accept":
            if require_answered and unanswered:
                return Md(f"Before acceptance: answer the "
                          f"{plural(unanswered, 'open review thread')}.")
            return Md("The votes carry it: a committee member writes `/rfc accept`.")
        return Md("The votes do not meet the threshold: a committee member writes "
                  "`/rfc reject`.")
    if state in (ACCEPTED, REJECTED):
        return Md("Decided. Merging the pull request records the RFC with its decision.")
    if state == POSTPONED:
        return Md("Postponed. A committee member can reopen it with `/rfc open`.")
    if state == WITHDRAWN:
        return Md("Withdrawn. Nothing more to do.")
    return Md("")


def build_view(*, number: int, title: str, rfc_path: str, rfc_type: str, state: str,
               now: datetime, period_ends: datetime | None,
               tally: Tally, discussion: Discussion, unresolved: list[str],
               resolved: list[str], late_concerns: list[str], errors: list[str],
               require_answered: bool, ledger: Ledger,
               reactions_seen: str = "",
               resolvers: frozenset[str] | None = None) -> StatusView:
    ends_text = shown_time(period_ends) if period_ends else None
    raisers = concern_raisers(ledger)
    rows = [{"option": OPTION_WORDS[o], "binding": tally.binding[o],
             "non_binding": tally.non_binding[o]} for o in OPTIONS]
    voters = []
    for voter in sorted(tally.voters, key=lambda v: (not v.binding, v.login.lower())):
        vote = OPTION_WORDS.get(voter.option or "", "—")
        if voter.conflicting:
            vote = "conflicting: " + ", ".join(OPTION_WORDS[o] for o in voter.conflicting)
        late = ""
        if voter.late_option:
            late = OPTION_WORDS.get(voter.late_option, voter.late_option)
        voters.append({"login": voter.login, "binding": voter.binding, "vote": vote,
                       "via": voter.source, "reason": voter.reason, "late": late})
    outcome = tally.outcome
    rate = outcome.approval_rate
    decision: dict[str, Any] | None = None
    if state in (ACCEPTED, REJECTED):
        when = decided_at(ledger, state)
        decision = {"state": state_word(state),
                    "date": shown_time(when) if when else "",
                    "deciders": deciders(ledger, state),
                    "tally": ", ".join(f"{OPTION_WORDS[o]} {tally.binding[o]}" for o in OPTIONS)}
    history: list[dict[str, Any]] = [
        {"at": shown_time(e.at), "by": e.by,
         "change": f"{state_word(e.from_state)} → {state_word(e.to_state)}"}
        for e in ledger.history if e.outcome == "applied" and e.from_state != e.to_state][-10:]
    threads = [{"by": t.started_by, "excerpt": t.excerpt, "replies": t.replies}
               for t in discussion.unanswered[:MAX_THREAD_ROWS]]
    concerns: list[dict[str, Any]] = (
        [{"name": c, "status": "blocking", "by": raisers.get(c, "")} for c in unresolved]
        + [{"name": c, "status": "raised after the period ended (not blocking)",
            "by": raisers.get(c, "")} for c in late_concerns]
        + [{"name": c, "status": "resolved", "by": raisers.get(c, "")} for c in resolved])
    return StatusView(
        number=number, title=title, rfc_path=rfc_path, rfc_type=rfc_type, state=state,
        state_label=STATE_TITLES.get(state, state_word(state)), period_ends=ends_text,
        days_left=days_left(now, period_ends) if state == OPEN else None,
        period_over=period_ends is not None and (state != OPEN or period_ends <= now),
        rule=tally.rule.describe(), rows=rows, voters=voters[:MAX_VOTER_ROWS],
        hidden_voters=max(0, len(voters) - MAX_VOTER_ROWS),
        not_voted=_capped(tally.binding_not_voted),
        conflicting=[v for v in voters if str(v["vote"]).startswith("conflicting")][:MAX_NAMES],
        more_conflicting=max(0, len(tally.conflicting) - MAX_NAMES),
        outcome={"quorum": outcome.quorum, "count": outcome.quorum_count,
                 "quorum_met": outcome.quorum_met,
                 "rate": format_share(rate) if rate is not None else "n/a",
                 "threshold": format_share(outcome.threshold),
                 "threshold_met": outcome.threshold_met, "decision": outcome.decision},
        concerns=concerns,
        discussion={"comments": discussion.comment_count,
                    "review_comments": discussion.review_comment_count,
                    "participants": len(discussion.participants),
                    "threads": len(discussion.threads),
                    "unanswered": len(discussion.unanswered),
                    "summary": discussion_summary(discussion)},
        threads=threads, errors=errors,
        next_step=next_step(state, tally, unresolved, len(discussion.unanswered),
                            require_answered, ends_text, raisers, resolvers),
        chart=[(OPTION_WORDS[o], tally.binding[o]) for o in OPTIONS if tally.binding[o]],
        decision=decision, history=history, ledger=ledger.encode(),
        reactions_marker=f"<!-- cvf:rfc-reactions:{reactions_seen} -->" if reactions_seen
        else "")


def discussion_summary(discussion: Discussion) -> str:
    """"4 comments, 1 review comment, 3 participants; 2 review threads on the RFC, 1
    without an author's reply" -- counts of zero are left out."""
    counts = [(discussion.comment_count, "comment"),
              (discussion.review_comment_count, "review comment"),
              (len(discussion.participants), "participant")]
    head = ", ".join(plural(n, w) for n, w in counts if n) or "No comments yet"
    threads = len(discussion.threads)
    if not threads:
        return head + "."
    unanswered = len(discussion.unanswered)
    tail = (f"{unanswered} without an author's reply" if unanswered
            else "all answered by an author")
    return f"{head}; {plural(threads, 'review thread')} on the RFC, {tail}."


def reactions_seen_in(body: str) -> str | None:
    """The reaction fingerprint a status comment was rendered from (``None`` if absent)."""
    match = _REACTIONS.search(body)
    return match.group(1) if match else None


def render_status(view: StatusView) -> str:
    """The comment body; cut to fit GitHub's 65,536-character limit, ledger kept whole."""
    body = render("rfc/status-comment.md.j2", v=view, marker=STATUS_MARKER)
    limit = 65_000
    if len(body) > limit:
        view.hidden_voters += max(0, len(view.voters) - 20)
        view.voters = view.voters[:20]
        view.threads = view.threads[:5]
        view.history = []
        body = render("rfc/status-comment.md.j2", v=view, marker=STATUS_MARKER)
    if len(body) > limit:
        raise CvfError(f"the RFC status comment would be {len(body)} characters, over "
                       f"GitHub's limit", hint="the ledger of commands is too long; "
                       "start a new pull request for this RFC")
    return body
