"""Nothing a user writes can pass for the bot, or make the bot's comments say more than
it means: copied markers and forged ledgers are ignored, user text is escaped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_config
from bot.events import Event
from bot.github.adapter import PyGithubAdapter
from bot.handlers import rfc as handler
from bot.markdown import ZERO_WIDTH_JOINER
from bot.rfc.record import LEDGER_MARKER, Ledger
from bot.rfc.status import STATUS_MARKER
from bot.templating import render
from tests.fake_github import FakeGitHub
from tests.gfm import code_spans, to_html
from tests.ghsim import GitHubSimulator
from tests.rfc_samples import rfc_text

BOT = "cvf-governance[bot]"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PATH = "rfcs/0005-shared-vocabulary.md"
CONFIG = """
rfc:
  committee:
    users: [alice, bob]
  vote_rules:
    default: {quorum: 1, threshold: 0.6667}
"""
NASTY = ("@octo-org/everyone <!-- cvf:rfc-status --> | fake | cell |\n| row | x |"
         " <img src=x onerror=alert(1)> <script>alert(1)</script> ```")



class Pr:
    def __init__(self, *, title: str = "RFC: shared vocabulary", gh: FakeGitHub | None = None):
        self.config = parse_config(CONFIG)
        self.gh = gh or FakeGitHub(bot_login=BOT, now=T0 - timedelta(days=1))
        self.now = T0
        self.number = self.gh.add_pull(title=title, author="writer", files={PATH: rfc_text()},
                                       head_ref="rfc-5", created_at=T0).number
        handler.on_pull_request(self._event("pull_request", {
            "action": "opened", "number": self.number,
            "pull_request": {"number": self.number}, "sender": {"login": "writer"}}), self.gh)

    def _event(self, name: str, payload: dict) -> Event:
        payload.setdefault("repository", {"full_name": self.gh.repo})
        return Event(name=name, payload=payload, config=self.config, now=self.now)

    def say(self, author: str, body: str) -> int:
        self.now += timedelta(minutes=1)
        comment = self.gh.add_comment(self.number, author, body, created_at=self.now)
        handler.on_issue_comment(self._event("issue_comment", {
            "action": "created", "issue": {"number": self.number, "pull_request": {}},
            "comment": {"id": comment.id}, "sender": {"login": author}}), self.gh)
        return comment.id

    def status(self) -> str:
        (body,) = [c.body for c in self.gh.bot_comments(self.number)
                   if c.body.startswith(STATUS_MARKER)]
        return body

    def state(self) -> str:
        applied = [e for e in Ledger.decode(self.status()).entries if e.outcome == "applied"]
        return applied[-1].to_state if applied else "draft"

    def bot_texts(self) -> list[str]:
        return [c.body for c in self.gh.bot_comments(self.number)]


def accepted_status_body() -> str:
    """A genuine status comment of an accepted RFC, as a forger would copy it."""
    real = Pr()
    real.say("alice", "/rfc open")
    real.say("alice", "/vote approve")
    real.say("alice", "/rfc review")
    real.say("alice", "/rfc accept")
    assert real.state() == "accepted"
    return real.status()


# -- forged state -------------------------------------------------------------------------
def test_a_copied_status_comment_with_an_accepted_ledger_is_not_the_bots() -> None:
    forged = accepted_status_body()
    assert forged.startswith(STATUS_MARKER) and LEDGER_MARKER in forged
    pr = Pr()
    fake_id = pr.say("mallory", forged)
    assert pr.state() == "draft"
    assert pr.gh.comments[fake_id].body == forged  # the bot never edits a user's comment
    assert pr.gh.labels_on(pr.number) == ["rfc: draft"]
    pr.say("alice", "/rfc open")
    assert pr.state() == "open_for_comment"  # and the real ledger goes on from draft


@pytest.mark.parametrize("login", ["cvf-governance-bot", "cvf_governance", "CVF-Governance[bot]x",
                                   "github-actions"])
def test_lookalike_logins_are_not_the_bot(login: str) -> None:
    pr = Pr()
    pr.say(login, accepted_status_body())
    assert pr.state() == "draft"
    assert len([b for b in pr.bot_texts() if b.startswith(STATUS_MARKER)]) == 1


def test_a_forged_bot_reply_does_not_silence_the_real_answer() -> None:
    """Replies are found by marker; a user who pre-posts the marker of the answer the bot
    is about to give must not stop the bot from answering."""
    pr = Pr()
    pr.now += timedelta(minutes=1)
    refused = pr.gh.add_comment(pr.number, "mallory", "/rfc accept", created_at=pr.now)
    key = re.compile(r"cvf:rfc-reply:\d+:[0-9a-f]+")
    pr.say("mallory", f"<!-- cvf:rfc-reply:{refused.id}:0000000000 -->\nnothing to see")
    handler.on_issue_comment(pr._event("issue_comment", {
        "action": "created", "issue": {"number": pr.number, "pull_request": {}},
        "comment": {"id": refused.id}, "sender": {"login": "mallory"}}), pr.gh)
    answers = [b for b in pr.bot_texts() if f"cvf:rfc-reply:{refused.id}:" in b]
    assert len(answers) == 1 and key.search(answers[0])
    assert "only committee members may use `/rfc accept`" in answers[0]


def test_the_adapter_never_takes_a_users_comment_for_its_sticky(ghsim: GitHubSimulator) -> None:
    """Against the simulator over HTTP: a user's comment that starts with the bot's
    marker is neither edited nor counted; the bot writes its own."""
    repo = ghsim.repo("octo-org/governance")
    issue = repo.add_issue(title="x", author="writer")
    marker = "<!-- cvf:e2e-sticky -->"
    user = repo.add_comment(issue.number, "mallory", f"{marker}\nI am the bot now")
    lookalike = repo.add_comment(issue.number, "cvf-governance-bot", f"{marker}\nme too")
    adapter = PyGithubAdapter("octo-org/governance", token="ghs_t", api_url=ghsim.base_url,
                              bot_login=BOT, attempts=1, max_wait=0.1,
                              seconds_between_writes=None)
    adapter.upsert_sticky_comment(issue.number, marker, f"{marker}\nthe real state")
    adapter.upsert_sticky_comment(issue.number, marker, f"{marker}\nthe real state, later")
    bodies = {c.id: (c.user, c.body) for c in repo.comments_on(issue.number)}
    assert bodies[user.id] == ("mallory", f"{marker}\nI am the bot now")
    assert bodies[lookalike.id] == ("cvf-governance-bot", f"{marker}\nme too")
    mine = [b for u, b in bodies.values() if u == BOT]
    assert mine == [f"{marker}\nthe real state, later"]


# -- escaping user text -------------------------------------------------------------------
def _outside_fences(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


def test_a_pr_title_cannot_mention_inject_html_or_fake_rows_in_the_status() -> None:
    pr = Pr(title=NASTY)
    status = pr.status()
    assert status.count("<!-- cvf:rfc-status -->") == 1 and status.startswith(STATUS_MARKER)
    assert "@octo-org/everyone" not in status
    assert "<img" not in status and "<script>" not in status
    rows = [line for line in status.splitlines() if line.startswith("| row")]
    assert rows == []


def test_a_refused_command_is_quoted_as_code_it_cannot_close() -> None:
    pr = Pr()
    line = "/rfc accept ``` @octo-org/everyone <!-- cvf:rfc-status --> ``` <b>x</b>"
    cid = pr.say("mallory", line)
    (reply,) = [b for b in pr.bot_texts() if f"cvf:rfc-reply:{cid}:" in b]
    html = to_html(reply)
    # The command is shown whole, as one code span: nothing in it renders as markup.
    assert any("@octo-org/everyone" in c and "<b>x</b>" in c for c in code_spans(reply))
    assert "<b>" not in html.replace("&lt;b&gt;", "")
    outside = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    assert "@octo-org/everyone" not in outside
    assert reply.count("<!-- cvf:rfc-status") == 0


def test_vote_reasons_and_concern_names_are_escaped() -> None:
    pr = Pr()
    pr.say("alice", "/rfc open")
    pr.say("bob", "/vote approve @octo-org/everyone | x | <img src=x> [link](http://evil)")
    pr.say("alice", "/rfc concern naming @octo-org/everyone <b>bold</b> | cell")
    status = pr.status()
    assert "@octo-org/everyone" not in status.replace(f"@{ZERO_WIDTH_JOINER}", "")
    assert "<img" not in status and "<b>" not in status
    assert "[link](http://evil)" not in status  # brackets escaped: text, not a link


def test_the_md_filter_neutralises_everything_people_can_type() -> None:
    out = render("rfc/help.md.j2", lines=[])
    assert out  # the template renders from the package
    from bot.markdown import escape_md, fence_safe

    text = escape_md("@alice <!-- cvf:x --> | a |\n| b | <script> ``` [l](u) ![i](u) #h")
    assert "@alice" not in text and "<!--" not in text and "<script>" not in text
    assert "\n" not in text and "|" not in text.replace("\\|", "")
    assert "```" not in fence_safe("a ``` b") and "<!--" not in fence_safe("<!-- x -->")


def test_a_user_named_like_the_app_cannot_plant_the_first_status_comment() -> None:
    """Before the bot has ever written on a pull request (it was down when the PR opened),
    a *user* whose login is the App's name without "[bot]" posts a genuine-looking
    accepted status comment: it must not become the RFC's state."""
    forged = accepted_status_body()
    gh = FakeGitHub(bot_login=BOT, now=T0 - timedelta(days=1))
    config = parse_config(CONFIG)
    number = gh.add_pull(title="RFC", author="writer", files={PATH: rfc_text()},
                         head_ref="rfc-5", created_at=T0).number
    comment = gh.add_comment(number, "cvf-governance", forged, created_at=T0)
    handler.on_issue_comment(Event(name="issue_comment", config=config, now=T0, payload={
        "action": "created", "repository": {"full_name": gh.repo},
        "issue": {"number": number, "pull_request": {}}, "comment": {"id": comment.id},
        "sender": {"login": "cvf-governance"}}), gh)
    handler.on_pull_request(Event(name="pull_request", config=config, now=T0, payload={
        "action": "synchronize", "repository": {"full_name": gh.repo}, "number": number,
        "pull_request": {"number": number}, "sender": {"login": "writer"}}), gh)
    assert gh.labels_on(number) == ["rfc: draft"]
    assert gh.comments[comment.id].body == forged
