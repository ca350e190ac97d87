"""RFC pull requests through the handlers, against the in-memory GitHub: what people see."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_config
from bot.events import Event
from bot.handlers import rfc as handler
from bot.rfc.document import parse_rfc
from bot.rfc.status import STATUS_MARKER
from tests.fake_github import FakeGitHub
from tests.rfc_samples import rfc_text

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PATH = "rfcs/0005-shared-vocabulary.md"
CONFIG = """
rfc:
  committee:
    users: [alice, bob, carol]
  vote_rules:
    default: {quorum: 2, threshold: 0.6667}
"""



class World:
    """One RFC pull request and a clock; helpers post comments and run the handlers."""

    def __init__(self, config_text: str = CONFIG, *, fork: bool = False,
                 files: dict[str, str | None] | None = None) -> None:
        self.config = parse_config(config_text)
        self.gh = FakeGitHub(now=T0 - timedelta(days=1))
        self.now = T0
        head_repo = "someone/governance-fork" if fork else None
        self.pull = self.gh.add_pull(title="RFC: shared vocabulary", author="writer",
                                     files=files or {PATH: rfc_text()}, head_ref="rfc-5",
                                     head_repo=head_repo, created_at=T0)
        self.number = self.pull.number

    # -- acting -------------------------------------------------------------------------
    def event(self, name: str, payload: dict) -> Event:
        payload.setdefault("repository", {"full_name": self.gh.repo})
        return Event(name=name, payload=payload, config=self.config, now=self.now)

    def opened(self) -> None:
        handler.on_pull_request(self.event("pull_request", {
            "action": "opened", "number": self.number, "pull_request": {"number": self.number},
            "sender": {"login": "writer"}}), self.gh)

    def say(self, author: str, body: str, *, minutes: float = 1) -> int:
        self.now += timedelta(minutes=minutes)
        comment = self.gh.add_comment(self.number, author, body, created_at=self.now)
        self.deliver_comment(comment.id, "created", author)
        return comment.id

    def deliver_comment(self, comment_id: int, action: str = "created", sender: str = "") -> None:
        handler.on_issue_comment(self.event("issue_comment", {
            "action": action, "issue": {"number": self.number, "pull_request": {}},
            "comment": {"id": comment_id}, "sender": {"login": sender or "someone"}}), self.gh)

    def react(self, user: str, content: str) -> None:
        self.now += timedelta(minutes=1)
        self.gh.add_reaction(user, content, number=self.number, created_at=self.now)

    def tick(self, at: datetime) -> handler.TickReport:
        self.now = at
        return handler.tick_repository(self.gh, self.config, at)

    # -- looking ------------------------------------------------------------------------
    def status(self) -> str:
        found = [c.body for c in self.gh.bot_comments(self.number) if STATUS_MARKER in c.body]
        assert len(found) == 1
        return found[0]

    def replies(self) -> list[str]:
        return [c.body for c in self.gh.bot_comments(self.number)
                if STATUS_MARKER not in c.body]

    def labels(self) -> list[str]:
        return self.gh.labels_on(self.number)

    def reactions(self, comment_id: int) -> list[str]:
        return [r.content for r in self.gh.comment_reactions.get(comment_id, [])
                if r.user == self.gh.bot_login]

    def front(self, ref: str = "rfc-5"):
        return parse_rfc(self.gh.file_text(PATH, ref) or "", path=PATH).meta


@pytest.fixture
def world() -> World:
    w = World()
    w.opened()
    return w


def test_opened_rfc_gets_status_label_and_green_check(world):
    assert "## RFC status: Draft" in world.status()
    assert world.labels() == ["rfc: draft"]
    check = world.gh.check_run("cvf/rfc")
    assert check is not None and check.conclusion == "success"
    assert world.front()["status"] == "draft"


def test_a_label_removed_by_hand_comes_back(world):
    world.gh.remove_label(world.number, "rfc: draft")
    handler.on_pull_request(world.event("pull_request", {
        "action": "unlabeled", "number": world.number,
        "pull_request": {"number": world.number}, "sender": {"login": "zed"}}), world.gh)
    assert world.labels() == ["rfc: draft"]


def test_author_opens_the_period_and_the_front_matter_follows(world):
    cid = world.say("writer", "Ready!\n/rfc open")
    assert world.reactions(cid) == ["rocket"]
    assert world.labels() == ["rfc: open-for-comment"]
    front = world.front()
    assert front["status"] == "open_for_comment"
    ends = world.now + timedelta(days=14)
    assert front["comment_period_ends"] in (ends, ends.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert front["discussion"] == world.pull.html_url
    assert "days, 0 h left" in world.status()


def test_refusals_quote_the_command_and_say_why(world):
    cid = world.say("mallory", "/rfc accept")
    (reply,) = world.replies()
    assert f"cvf:rfc-reply:{cid}:" in reply
    assert "/rfc accept" in reply and "only committee members" in reply
    assert world.reactions(cid) == []
    world.say("alice", "/rfc accept")
    assert "works only when it is review" in world.replies()[-1]


def test_unknown_command_lists_the_valid_ones(world):
    world.say("writer", "/rfc merge-it-now")
    reply = world.replies()[-1]
    assert "`/rfc merge-it-now` is not a command" in reply
    assert "`/rfc extend <duration>`" in reply and "`/vote retract`" in reply


def test_votes_by_reaction_and_command_binding_and_not(world):
    world.say("writer", "/rfc open")
    world.react("alice", "+1")
    world.react("zed", "-1")
    vote = world.say("bob", "/vote request-changes needs an example")
    assert world.reactions(vote) == ["+1"]
    status = world.status()
    assert "| approve | 1 | 0 |" in status
    assert "| request changes | 1 | 0 |" in status
    assert "| reject | 0 | 1 |" in status
    assert "needs an example" in status
    assert "Binding voters who have not voted: carol." in status
    # A change of vote: bob edits his comment.
    world.gh.edit_comment(vote, "/vote approve")
    world.deliver_comment(vote, "edited")
    assert "| approve | 2 | 0 |" in world.status()
    # ...and deletes it.
    world.gh.delete_comment(vote)
    world.deliver_comment(vote, "deleted")
    assert "| approve | 1 | 0 |" in world.status()


def test_conflicting_reactions_are_listed(world):
    world.say("writer", "/rfc open")
    world.react("alice", "+1")
    world.react("alice", "-1")
    world.say("writer", "/rfc status")
    assert "Conflicting reactions (not counted until one is removed): alice" in world.status()


def test_a_vote_by_reaction_alone_is_counted_at_the_next_tick(world):
    """GitHub sends no webhook for reactions: the tick notices new or removed ones with
    one listing per open RFC and refreshes the status comment only then."""
    world.say("writer", "/rfc open")
    assert "| approve | 0 | 0 |" in world.status()
    world.react("alice", "+1")
    world.react("zed", "+1")
    assert "| approve | 0 | 0 |" in world.status()  # nothing told the bot yet
    report = world.tick(world.now + timedelta(hours=1))
    assert len(report.synced) == 1
    assert "| approve | 1 | 1 |" in world.status()
    writes = world.gh.stats.writes
    report = world.tick(world.now + timedelta(hours=1))
    assert report.synced == [] and world.gh.stats.writes == writes
    world.gh.issue_reactions[world.number] = [
        r for r in world.gh.issue_reactions[world.number] if r.user != "alice"]
    world.tick(world.now + timedelta(hours=1))
    assert "| approve | 0 | 1 |" in world.status()


def full_lifecycle(world: World) -> None:
    world.say("writer", "/rfc open")
    opened = world.now
    world.react("alice", "+1")
    world.say("bob", "/vote approve")
    ends = opened + timedelta(days=14)
    # Before the reminder window: nothing happens (and it is cheap).
    calls = world.gh.stats.requests
    report = world.tick(ends - timedelta(days=5))
    assert report.checked == 1 and report.synced == []
    assert world.gh.stats.requests - calls <= 3
    # Reminder window: one reminder, once.
    world.tick(ends - timedelta(hours=47))
    world.tick(ends - timedelta(hours=46))
    reminders = [r for r in world.replies() if "Reminder" in r]
    # Only the binding voter who has not voted is reminded.
    assert len(reminders) == 1 and "@carol" in reminders[0]
    assert "@alice" not in reminders[0] and "@bob" not in reminders[0]
    world.say("carol", "/vote reject not convinced")
    # The period ends: review, committee mentioned.
    world.tick(ends + timedelta(minutes=5))
    assert world.labels() == ["rfc: review"]
    (ended,) = [r for r in world.replies() if "comment period ended" in r]
    assert "@alice @bob @carol" in ended
    world.tick(ends + timedelta(minutes=10))
    assert len([r for r in world.replies() if "comment period ended" in r]) == 1


def test_whole_lifecycle_to_acceptance(world):
    full_lifecycle(world)
    late = world.say("dave", "/vote reject too late")
    assert "not counted" in world.replies()[-1] and world.reactions(late) == []
    cid = world.say("alice", "/rfc accept")
    assert world.reactions(cid) == ["rocket"]
    assert world.labels() == ["rfc: accepted"]
    front = world.front()
    assert front["status"] == "accepted"
    decision = front["decision"]
    assert decision["tally"] == {"approve": 2, "request_changes": 0, "reject": 1, "abstain": 0}
    assert decision["deciders"] == ["alice", "bob", "carol"]
    assert str(decision["date"]) == world.now.date().isoformat()
    status = world.status()
    assert "### Decision" in status and "Accepted on" in status
    # Removing a reaction afterwards does not un-accept.
    world.gh.remove_reaction("alice", "+1", number=world.number)
    world.say("writer", "/rfc status")
    assert world.labels() == ["rfc: accepted"]


def test_concern_blocks_acceptance_until_resolved(world):
    world.say("writer", "/rfc open")
    world.say("alice", "/rfc concern Naming")
    world.react("alice", "+1")
    world.react("bob", "+1")
    world.tick(world.now + timedelta(days=15))
    world.say("bob", "/rfc accept")
    assert "unresolved concerns: naming" in world.replies()[-1]
    world.say("alice", "/rfc resolve naming")
    cid = world.say("bob", "/rfc accept")
    assert world.reactions(cid) == ["rocket"] and world.labels() == ["rfc: accepted"]
    assert "naming (raised by alice): resolved" in world.status()


def test_rejection(world):
    world.say("writer", "/rfc open")
    world.react("alice", "-1")
    world.react("bob", "confused")
    world.say("alice", "/rfc review")
    assert world.labels() == ["rfc: review"]
    world.say("bob", "/rfc reject")
    assert world.labels() == ["rfc: rejected"]
    assert world.front()["decision"]["tally"]["reject"] == 1


def test_withdrawal_by_author_and_by_closing(world):
    world.say("writer", "/rfc open")
    world.say("writer", "/rfc withdraw")
    assert world.labels() == ["rfc: withdrawn"]
    other = World()
    other.opened()
    other.say("writer", "/rfc open")
    other.gh.update_pull(other.number, state="closed")
    handler.on_pull_request(other.event("pull_request", {
        "action": "closed", "number": other.number, "pull_request": {"number": other.number},
        "sender": {"login": "writer"}}), other.gh)
    assert other.labels() == ["rfc: withdrawn"]


def test_redelivered_event_changes_nothing(world):
    cid = world.say("writer", "/rfc open\n/vote approve")
    writes = len(world.gh.stats.write_log)
    world.deliver_comment(cid)
    world.deliver_comment(cid)
    assert len(world.gh.stats.write_log) == writes


def test_two_events_racing_both_get_applied():
    w = World()
    w.opened()
    first = w.gh.add_comment(w.number, "writer", "/rfc open", created_at=w.now)
    racing = {"done": False}
    original = w.gh.list_issue_comments

    def list_with_race(number):
        found = original(number)
        if not racing["done"]:
            # Another delivery's comment lands while this one is being handled.
            racing["done"] = True
            w.gh.add_comment(number, "alice", "/rfc concern scope",
                             created_at=w.now + timedelta(seconds=30))
        return found

    w.gh.list_issue_comments = list_with_race  # type: ignore[method-assign]
    w.deliver_comment(first.id)
    status = w.status()
    assert "scope (raised by alice): blocking" in status and w.labels() == ["rfc: open-for-comment"]


def test_fork_pr_keeps_state_in_labels_and_writes_on_merge():
    w = World(fork=True)
    w.opened()
    w.say("writer", "/rfc open")
    w.react("alice", "+1")
    w.react("bob", "+1")
    w.say("alice", "/rfc review")
    w.say("alice", "/rfc accept")
    assert w.labels() == ["rfc: accepted"]
    assert not w.gh.writes("PUT", "/contents/")
    # The merge brings the file to main; the bot records the decision there.
    w.gh.put_file(PATH, rfc_text())
    w.gh.update_pull(w.number, state="closed", merged=True)
    handler.on_pull_request(w.event("pull_request", {
        "action": "closed", "number": w.number, "pull_request": {"number": w.number},
        "sender": {"login": "alice"}}), w.gh)
    front = w.front("main")
    assert front["status"] == "accepted" and front["decision"]["deciders"] == ["alice", "bob"]


def test_two_rfcs_in_one_pr_fail_the_check():
    other = PATH.replace("0005-shared-vocabulary", "0006-other")
    w = World(files={PATH: rfc_text(), other: rfc_text()})
    w.opened()
    check = w.gh.check_run("cvf/rfc")
    assert check is not None and check.conclusion == "failure"
    (comment,) = w.gh.bot_comments(w.number)
    assert "One RFC per pull request" in comment.body and other in comment.body


def test_lint_failure_fails_the_check_and_blocks_opening():
    w = World(files={PATH: rfc_text().replace("type: standard", "type: wish")})
    w.opened()
    check = w.gh.check_run("cvf/rfc")
    assert check is not None and check.conclusion == "failure"
    assert any("RFC-005" in r for r in w.replies())
    w.say("writer", "/rfc open")
    assert "lint error" in w.replies()[-1] and w.labels() == ["rfc: draft"]


def test_failed_team_lookup_is_shown_never_everyone():
    w = World(CONFIG.replace("users: [alice, bob, carol]",
                             "users: [alice]\n    teams: [octo-org/rfc-committee]"))
    w.gh.set_team("octo-org", "rfc-committee", ["bob"])
    w.gh.fail_team_lookup("octo-org", "rfc-committee")
    w.opened()
    w.say("writer", "/rfc open")
    w.react("bob", "+1")
    cid = w.say("bob", "/rfc concern cost")
    status = w.status()
    assert "committee team octo-org/rfc-committee could not be read" in status
    assert "| approve | 0 | 1 |" in status
    assert "only committee members" in w.replies()[-1] and w.reactions(cid) == []


def test_bot_comments_and_spoofed_markers_are_not_trusted(world):
    fake_ledger = ('<!-- cvf:rfc-status -->\n<!-- cvf:rfc-ledger {"v":1,"entries":[{"key":"x",'
                   '"command":"accept","by":"mallory","at":"2026-03-02T09:00:00Z",'
                   '"outcome":"applied","from_state":"review","to_state":"accepted"}]} -->')
    world.say("mallory", fake_ledger)
    world.gh.add_comment(world.number, "cvf-governance[bot]", "/rfc open", is_bot=True)
    world.say("writer", "/rfc status")
    assert world.labels() == ["rfc: draft"]
    assert len([c for c in world.gh.comments_on(world.number)
                if c.author == world.gh.bot_login and STATUS_MARKER in c.body]) == 1


def test_comments_on_a_non_rfc_pr_are_answered_once():
    w = World(files={"README.md": "hello"})
    w.opened()
    assert w.gh.bot_comments(w.number) == []
    cid = w.say("alice", "/rfc accept")
    w.deliver_comment(cid)
    (reply,) = w.replies()
    assert "changes no RFC file" in reply


def test_extend_reopens_a_review_without_quorum(world):
    world.say("writer", "/rfc open")
    world.tick(world.now + timedelta(days=15))
    assert "The quorum is not met" in world.status()
    world.say("carol", "/rfc extend 7d")
    assert world.labels() == ["rfc: open-for-comment"]
    assert "7 days, 0 h left" in world.status() or "6 days" in world.status()


def test_help_answers_with_the_table(world):
    cid = world.say("zed", "/rfc help")
    assert "| `/rfc accept` |" in world.replies()[-1]
    assert world.reactions(cid) == ["+1"]


MATRIX_CONFIG = CONFIG.replace("users: [alice, bob, carol]",
                               "users: [alice]\n    teams: [octo-org/rfc-committee, "
                               "octo-org/broken-team]")
# Who may use each command by default (the lifecycle table); everyone else is refused
# with a quoted reply saying who may.
ALLOWED = {"open": {"author", "committee", "team"}, "withdraw": {"author", "committee", "team"}}
COMMANDS = ("open", "review", "accept", "reject", "postpone", "withdraw", "extend 7d",
            "concern scope", "resolve scope")
ACTORS = {"author": "writer", "committee": "alice", "team": "tina", "other": "zed",
          "failed-team": "fred"}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("role", list(ACTORS))
def test_permission_matrix(command, role):
    w = World(MATRIX_CONFIG)
    w.gh.set_team("octo-org", "rfc-committee", ["tina"])
    w.gh.set_team("octo-org", "broken-team", ["fred"])
    w.gh.fail_team_lookup("octo-org", "broken-team")
    w.opened()
    cid = w.say(ACTORS[role], f"/rfc {command}")
    name = command.split()[0]
    allowed = role in ALLOWED.get(name, {"committee", "team"})
    replies = [r for r in w.replies() if f"cvf:rfc-reply:{cid}:" in r]
    if allowed:
        # Done (reaction) or refused for the state or a guard — never for the person.
        assert w.reactions(cid) or (replies and "not done: only" not in replies[0]), \
            (role, command)
    else:
        assert len(replies) == 1 and "not done: only" in replies[0], (role, command)
        assert f"/rfc {command}" in replies[0] and w.reactions(cid) == []


def test_the_bot_itself_is_never_obeyed(world):
    comment = world.gh.add_comment(world.number, "cvf-governance[bot]", "/rfc open\n/vote approve",
                                   is_bot=True)
    world.deliver_comment(comment.id, sender="cvf-governance[bot]")
    assert world.labels() == ["rfc: draft"]
    assert [r for r in world.replies() if "In response to" in r] == []
    assert "| approve | 0 | 0 |" in world.status()


def test_certification_level_makes_committee_votes_binding():
    from pathlib import Path

    w = World(CONFIG + "certification:\n  gates:\n    rfc_votes: {default: practitioner}\n")
    program = Path(__file__).resolve().parent.parent / "certification" / "program.yml"
    w.gh.put_file("certification/program.yml", program.read_text("utf-8"))
    w.gh.put_file("certification/registry.json", json.dumps({
        "version": 1, "attempts": [],
        "certificates": [{"id": "c-1", "login": "alice", "level": "architect",
                          "issued": "2026-01-01T00:00:00Z", "valid_until": None}]}))
    w.opened()
    w.say("writer", "/rfc open")
    w.react("alice", "+1")
    w.react("bob", "+1")
    w.say("carol", "/rfc status")
    status = w.status()
    assert "binding with the practitioner certification or above" in status
    assert "| approve | 1 | 1 |" in status
    assert "Binding voters who have not voted:" not in status


def test_certification_that_cannot_be_read_makes_no_vote_binding():
    w = World(CONFIG + "certification:\n  gates:\n    rfc_votes: {default: practitioner}\n")
    w.opened()
    w.say("writer", "/rfc open")
    w.react("alice", "+1")
    w.say("carol", "/rfc status")
    status = w.status()
    assert "| approve | 0 | 1 |" in status
    assert "certification could not be checked, so no vote is binding" in status


def test_accept_can_wait_for_answered_review_threads():
    w = World(CONFIG + "  require_answered_threads: true\n")
    w.opened()
    w.say("writer", "/rfc open")
    w.react("alice", "+1")
    w.react("bob", "+1")
    question = w.gh.add_review_comment(w.number, "zed", "What about <b>@bob</b>?", path=PATH)
    handler.on_review_comment(w.event("pull_request_review_comment", {
        "action": "created", "pull_request": {"number": w.number},
        "comment": {"id": question.id}, "sender": {"login": "zed"}}), w.gh)
    status = w.status()
    assert "1 without an author's reply" in status and "@bob" not in status
    w.tick(w.now + timedelta(days=15))
    w.say("alice", "/rfc accept")
    assert "1 review thread(s) on the RFC have no reply from an author" in w.replies()[-1]
    w.gh.add_review_comment(w.number, "writer", "Answered.", path=PATH,
                            in_reply_to_id=question.id)
    cid = w.say("alice", "/rfc accept")
    assert w.reactions(cid) == ["rocket"]


def test_reminders_can_be_switched_off():
    w = World(CONFIG + "  reminder_before: false\n")
    w.opened()
    w.say("writer", "/rfc open")
    w.tick(w.now + timedelta(days=13, hours=12))
    assert not [r for r in w.replies() if "Reminder" in r]
