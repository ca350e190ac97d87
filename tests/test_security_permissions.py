"""The permission matrix: every state-changing command × every kind of person.

Each case puts an RFC (or a risky pull request) in a state where the command would
work, then lets one person say it, through the real router (``bot.events``) and the real
handlers, against the in-memory GitHub. Allowed → the command takes effect and is
acknowledged; refused → nothing changes and the person gets an answer saying who may.
The bot's own comments are never commands, and a committee team that cannot be read
never makes its members binding (the failure is shown instead).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import Config, parse_config
from bot.events import Event, load_handlers
from bot.github.delivery import dispatch
from bot.rfc.lifecycle import (
    ACCEPTED,
    ANYONE,
    AUTHOR,
    BINDING_VOTER,
    COMMITTEE,
    OPEN,
    permissions_from_config,
)
from bot.rfc.record import Ledger
from bot.rfc.status import STATUS_MARKER
from tests.conftest import load_payload
from tests.fake_github import FakeGitHub
from tests.rfc_samples import rfc_text

BOT = "cvf-governance[bot]"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PATH = "rfcs/0005-shared-vocabulary.md"
# Who is who: the RFC's author, a committee member named in config, a member of the
# committee team (binding through the team), an outsider, the bot, and a member of a
# committee team whose membership cannot be read.
PEOPLE: dict[str, str] = {
    "author": "writer", "committee": "alice", "binding_voter": "tina", "other": "mallory",
    "bot": BOT, "lookup_failed": "frank",
}
ROLES_OF: dict[str, frozenset[str]] = {
    "author": frozenset({AUTHOR}), "committee": frozenset({COMMITTEE, BINDING_VOTER}),
    "binding_voter": frozenset({COMMITTEE, BINDING_VOTER}), "other": frozenset(),
    "lookup_failed": frozenset(),
}
BASE = """
rfc:
  committee:
    users: [alice]
    teams: [octo-org/rfc-committee, octo-org/broken-team]
  vote_rules:
    default: {quorum: 1, threshold: 0.6667}
"""
# The same, with every default turned around, so the matrix follows the config, not code.
CUSTOM = BASE + """  authors_may_open: false
  permissions:
    open: [committee]
    review: [author, committee]
    accept: [binding_voter]
    reject: [committee]
    postpone: [anyone]
    withdraw: [committee]
    extend: [author]
    concern: [anyone]
    resolve: [author, committee]
"""
CONFIGS = {"defaults": BASE, "custom": CUSTOM}

# command -> (setup comments by alice before it, the command line, state it leads to)
SETUPS: dict[str, tuple[list[str], str, str | None]] = {
    "open": ([], "/rfc open", OPEN),
    "review": (["/rfc open"], "/rfc review", "review"),
    "accept": (["/rfc open", "/vote approve", "/rfc review"], "/rfc accept", ACCEPTED),
    "reject": (["/rfc open", "/vote reject", "/rfc review"], "/rfc reject", "rejected"),
    "postpone": (["/rfc open"], "/rfc postpone", "postponed"),
    "withdraw": ([], "/rfc withdraw", "withdrawn"),
    "extend": (["/rfc open"], "/rfc extend 7d", OPEN),
    "concern": (["/rfc open"], "/rfc concern naming", OPEN),
    "resolve": (["/rfc open", "/rfc concern naming"], "/rfc resolve naming", OPEN),
}



class Repo:
    """One RFC pull request; people comment and the router delivers the comment event."""

    def __init__(self, config_text: str) -> None:
        self.config: Config = parse_config(config_text)
        self.gh = FakeGitHub(bot_login=BOT, now=T0 - timedelta(days=1))
        self.gh.set_team("octo-org", "rfc-committee", ["tina"])
        self.gh.set_team("octo-org", "broken-team", ["frank"])
        self.gh.fail_team_lookup("octo-org", "broken-team")
        self.now = T0
        pull = self.gh.add_pull(title="RFC: shared vocabulary", author="writer",
                                files={PATH: rfc_text()}, head_ref="rfc-5", created_at=T0)
        self.number = pull.number
        self.router = load_handlers()
        payload = load_payload("pull_request", "opened")
        payload["number"] = payload["pull_request"]["number"] = self.number
        self.deliver("pull_request", payload, sender="writer")

    def deliver(self, name: str, payload: dict[str, Any], *, sender: str) -> None:
        payload["repository"]["full_name"] = self.gh.repo
        payload["sender"]["login"] = sender
        payload.pop("installation", None)
        event = Event(name=name, payload=payload, config=self.config, now=self.now)
        outcome = dispatch(event, self.gh, self.router)
        assert outcome.status in ("handled", "ignored", "no_handler"), outcome.errors

    def say(self, login: str, body: str) -> int:
        self.now += timedelta(minutes=1)
        comment = self.gh.add_comment(self.number, login, body, created_at=self.now)
        payload = load_payload("issue_comment", "created")
        payload["issue"]["number"] = self.number
        payload["issue"]["pull_request"] = {"url": f"https://api.github.com/pulls/{self.number}"}
        payload["comment"].update(id=comment.id, body=body)
        payload["comment"]["user"]["login"] = login
        self.deliver("issue_comment", payload, sender=login)
        return comment.id

    def ledger(self) -> Ledger:
        status = [c.body for c in self.gh.bot_comments(self.number)
                  if c.body.startswith(STATUS_MARKER)]
        assert len(status) == 1
        return Ledger.decode(status[0])

    def state(self) -> str:
        applied = [e for e in self.ledger().entries if e.outcome == "applied"]
        return applied[-1].to_state if applied else "draft"

    def answers_to(self, comment_id: int) -> list[str]:
        return [c.body for c in self.gh.bot_comments(self.number)
                if f"cvf:rfc-reply:{comment_id}:" in c.body]

    def bot_reactions(self, comment_id: int) -> list[str]:
        return [r.content for r in self.gh.comment_reactions.get(comment_id, [])
                if r.user == BOT]


def expected_allowed(config_text: str, command: str, role: str) -> bool:
    allowed = permissions_from_config(parse_config(config_text).rfc)[command]
    return ANYONE in allowed or bool(ROLES_OF[role] & allowed)


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("command", sorted(SETUPS))
@pytest.mark.parametrize("role", sorted(PEOPLE))
def test_rfc_command_permission_matrix(config_name: str, command: str, role: str) -> None:
    config_text = CONFIGS[config_name]
    repo = Repo(config_text)
    before_lines, line, target = SETUPS[command]
    for setup in before_lines:
        repo.say("alice", setup)
    state_before = repo.state()
    entries_before = len(repo.ledger().entries)
    comment_id = repo.say(PEOPLE[role], line)
    ledger = repo.ledger()
    new = ledger.entries[entries_before:]

    if role == "bot":
        # The bot's own words are never commands: no entry, no answer, no reaction.
        assert new == [] and repo.state() == state_before
        assert repo.answers_to(comment_id) == [] and repo.bot_reactions(comment_id) == []
        return
    (entry,) = [e for e in new if e.comment_id == comment_id]
    if expected_allowed(config_text, command, role):
        assert entry.outcome == "applied", repo.answers_to(comment_id)
        assert repo.state() == target
        assert repo.bot_reactions(comment_id) in (["rocket"], ["+1"])
        assert repo.answers_to(comment_id) == []
    else:
        assert entry.outcome == "refused"
        assert repo.state() == state_before
        (answer,) = repo.answers_to(comment_id)
        assert line in answer and "not done: only " in answer and "may use" in answer
        assert repo.bot_reactions(comment_id) == []


def test_custom_config_setups_are_reachable() -> None:
    """The matrix's setup comments are alice's; under the custom config she may still
    open and vote, so each refused case above is refused for the person, not the state."""
    perms = permissions_from_config(parse_config(CUSTOM).rfc)
    assert COMMITTEE in perms["open"] and COMMITTEE in perms["review"]


@pytest.mark.parametrize("role", sorted(PEOPLE))
def test_votes_count_as_binding_only_for_binding_voters(role: str) -> None:
    """Anyone may vote; only committee members (named or through a readable team) bind.
    With quorum 1, the RFC can be accepted on this one vote exactly when it binds."""
    repo = Repo(BASE)
    repo.say("alice", "/rfc open")
    vote = repo.say(PEOPLE[role], "/vote approve I like it")
    repo.say("alice", "/rfc review")
    accept = repo.say("alice", "/rfc accept")
    binding = role in ("committee", "binding_voter")
    assert (repo.state() == ACCEPTED) is binding
    if role == "bot":
        assert repo.bot_reactions(vote) == []
    else:
        assert repo.bot_reactions(vote) == ["+1"]  # every person's vote is acknowledged
    if not binding:
        (answer,) = repo.answers_to(accept)
        assert "quorum is not met" in answer


def test_an_unreadable_committee_team_is_shown_not_trusted() -> None:
    repo = Repo(BASE)
    comment = repo.say("frank", "/rfc accept")
    status = [c.body for c in repo.gh.bot_comments(repo.number)
              if c.body.startswith(STATUS_MARKER)][0]
    assert "octo-org/broken-team could not be read" in status
    assert "only committee members may use `/rfc accept`" in repo.answers_to(comment)[0]


# -- /approve-risk on an R3 pull request ---------------------------------------------------
ROUTING = """
rfc:
  committee:
    users: [alice]
    teams: [octo-org/rfc-committee, octo-org/broken-team]
routing:
  agents:
    - {id: executor-1, capabilities: [execute], capacity: 2}
  skills:
    - {id: secrets, risk_level: R3, required_capabilities: [execute],
       paths: [".github/workflows/"]}
"""


@pytest.mark.parametrize("role", sorted(PEOPLE))
def test_approve_risk_matrix(role: str) -> None:
    gh = FakeGitHub(bot_login=BOT)
    gh.set_team("octo-org", "rfc-committee", ["tina"])
    gh.set_team("octo-org", "broken-team", ["frank"])
    gh.fail_team_lookup("octo-org", "broken-team")
    sha = gh.add_pull(7, files={".github/workflows/ci.yml": "x"}, author="writer").head_sha
    config = parse_config(ROUTING)
    router = load_handlers()

    def deliver(name: str, payload: dict[str, Any], sender: str) -> None:
        payload["repository"]["full_name"] = gh.repo
        payload["sender"]["login"] = sender
        payload.pop("installation", None)
        outcome = dispatch(Event(name=name, payload=payload, config=config), gh, router)
        assert outcome.status in ("handled", "ignored"), outcome.errors

    opened = load_payload("pull_request", "opened")
    opened["number"] = opened["pull_request"]["number"] = 7
    deliver("pull_request", opened, "writer")
    login = PEOPLE[role]
    comment = gh.add_comment(7, login, "/approve-risk reviewed the workflow change")
    payload = load_payload("issue_comment", "created")
    payload["issue"]["number"] = 7
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/pulls/7"}
    payload["comment"].update(id=comment.id, body=comment.body)
    payload["comment"]["user"]["login"] = login
    deliver("issue_comment", payload, login)

    runs = [r for r in gh.check_runs.values() if r.name == "cvf/routing" and r.head_sha == sha]
    conclusion = runs[-1].conclusion
    answers = [c.body for c in gh.bot_comments(7) if "In response to" in c.body]
    # The author of the change may not approve its own risk, even on the committee.
    if role in ("committee", "binding_voter"):
        assert conclusion == "success"
        assert answers == []
    elif role == "bot":
        assert conclusion is None and answers == []  # still waiting (pending)
    else:
        assert conclusion is None and runs[-1].status == "in_progress"
        assert len(answers) == 1 and "reviewed the workflow change" in answers[0]


# -- /grade on a rubric exam ---------------------------------------------------------------
GRADERS = {"author": "alice", "assigned_reviewer": None, "committee": "chair",
           "other": "mallory", "bot": BOT}


@pytest.mark.parametrize("role", sorted(GRADERS))
def test_grade_matrix(role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a reviewer the bot assigned may grade; the candidate, a committee member who
    is not a reviewer and an outsider are answered; the bot's own words are no grade."""
    from tests import test_cert_handler as cert

    monkeypatch.setenv("CVF_CERT_ANSWER_KEY", cert.answer_key_text())
    monkeypatch.setenv("CVF_CERT_SIGNING_KEY", cert.PRIVATE.decode())
    gh = FakeGitHub(bot_login=BOT)
    for path in (cert.ROOT / "certification").rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".json", ".pem"):
            gh.put_file(str(path.relative_to(cert.ROOT)), path.read_text("utf-8"))
    gh.put_file("certification/registry.json", None)
    config = cert.CONFIG + "rfc:\n  committee:\n    users: [chair]\n"
    cert.hold(gh, "alice", "foundation")
    cert.comment(gh, 1, "alice", "/cert request practitioner", config=config)
    cert.open_pull(gh, 20, "alice", {"certification/submissions/alice/practitioner.yml":
                                     cert.PRACTICAL}, config=config)
    attempt = cert.registry(gh).attempts[-1]
    grader = GRADERS[role] or attempt["reviewers"][0]
    before = len(gh.bot_comments(20))
    cert.comment(gh, 20, grader, cert.grade_line(80), config=config)
    text = cert.bot_text(gh, 20)
    after = cert.registry(gh).attempts[-1]
    if role == "assigned_reviewer":
        assert "waiting for grades (1 of 2)" in text
    elif role == "bot":
        assert len(gh.bot_comments(20)) == before + 1 and after == attempt  # its own only
    else:
        assert after == attempt
        reason = ("you cannot grade your own exam" if role == "author"
                  else "only reviewers holding practitioner or above")
        assert reason in text
        assert f"@{grader}" in text or grader in text
