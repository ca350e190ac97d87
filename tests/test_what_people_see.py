"""What people see in comments, rendered as GitHub renders them (CommonMark + GFM tables).

Every assertion here is on the rendered page: code spans that show as code, no literal
backslash-escapes of the bot's own markup, user text that stays text (no mention, no
HTML, no link, no extra table cell), one reply format for every concern, "did you mean",
honest next steps while a concern blocks, reminders only to those who have not voted,
and facts that agree between the status comment and the front matter.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.markdown import Md, code, escape_md, escape_table_cell, md
from bot.replies import did_you_mean, reply_body
from bot.templating import render, templates_dir
from tests.gfm import code_spans, literal_escapes, to_html, visible_text
from tests.test_rfc_handlers import CONFIG as RFC_CONFIG
from tests.test_rfc_handlers import World

ORDINARY = "Use `setup.cfg` for alice_smith's *draft* #12"
HOSTILE = ("@octo-org/everyone <!-- cvf:rfc-status --> <b>bold</b> | cell | "
           "[link](http://evil) ![i](http://evil/x.png) ``` `tick")


def assert_user_text_stays_text(markdown: str) -> None:
    """HOSTILE went through: no HTML element, no link, no live mention, no fake marker."""
    html = to_html(markdown)
    outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    assert "<b>" not in outside_code and "<img" not in html
    assert 'href="http://evil' not in html
    assert "@octo-org/everyone" not in outside_code  # the zero-width joiner breaks it
    assert "<!-- cvf:rfc-status" not in markdown


def assert_our_markup_renders(markdown: str, *spans: str) -> None:
    assert literal_escapes(markdown) == [], visible_text(markdown)
    shown = code_spans(markdown)
    for span in spans:
        assert span in shown, (span, shown)


# -- the escaping helpers ------------------------------------------------------------------
def test_user_code_spans_stay_code_and_everything_else_is_escaped():
    text = escape_md(ORDINARY)
    assert code_spans(text) == ["setup.cfg"]
    assert visible_text(text).strip() == "Use setup.cfg for alice_smith's *draft* #12"
    assert_user_text_stays_text(escape_md(HOSTILE))


def test_table_cells_hold_code_spans_with_pipes():
    row = f"| {escape_table_cell('run `a|b` now | x')} | 2 |\n"
    html = to_html("| what | n |\n|---|---|\n" + row)
    assert html.count("<td>") == 2 and "<code>a|b</code>" in html


def test_md_keeps_our_markup_and_escapes_the_values():
    text = md("write {} to {}", code("/rfc resolve naming"), "@bob <i>x</i>")
    assert code_spans(text) == ["/rfc resolve naming"]
    assert_user_text_stays_text(md("{}", HOSTILE))
    assert code("a ``` b") == "````a ``` b````"


# -- one reply format ----------------------------------------------------------------------
def test_reply_format_names_links_quotes_and_says_what_to_do():
    body = reply_body("<!-- m -->", "dave", Md("not done: only committee members may use "
                                             "`/rfc accept`."),
                      quote="I think so\n/rfc accept", url="https://github.com/o/r/pull/1#c-2",
                      instead=md("ask {} to write {}.", "alice", code("/rfc accept")))
    html = to_html(body)
    assert visible_text(body).startswith("@dave: not done: only committee members")
    assert '<a href="https://github.com/o/r/pull/1#c-2">this</a>' in html
    assert "<blockquote>" in html and "<code>/rfc accept</code>" in html
    assert "Instead:" in visible_text(body)
    assert_our_markup_renders(body, "/rfc accept")


def test_reply_never_links_anything_but_a_github_url():
    body = reply_body("<!-- m -->", "dave", "x", quote="/rfc x", url="javascript:alert(1)")
    assert "javascript" not in body and "In response to this:" in body


def test_did_you_mean():
    assert did_you_mean("acept", ["accept", "reject"]) == "accept"
    assert did_you_mean("zzzz", ["accept", "reject"]) is None


@pytest.fixture
def world() -> World:
    w = World()
    w.opened()
    return w


def test_rfc_misspelt_command_gets_did_you_mean_and_its_family_only(world):
    cid = world.say("writer", "/rfc acept")
    (reply,) = [r for r in world.replies() if f"cvf:rfc-reply:{cid}:" in r]
    text = visible_text(reply)
    assert text.startswith("@writer: /rfc acept is not an RFC command. Did you mean /rfc accept?")
    assert "In response to" in text
    shown = code_spans(reply)
    assert {"/rfc accept", "/rfc reject", "/rfc postpone", "/rfc withdraw"} <= set(shown)
    assert "/rfc open" not in shown and "<table>" not in to_html(reply)
    assert_our_markup_renders(reply, "/rfc accept", "/rfc help")


def test_rfc_vote_typo_gets_did_you_mean(world):
    world.say("writer", "/rfc open")
    cid = world.say("bob", "/vote aprove")
    (reply,) = [r for r in world.replies() if f"cvf:rfc-reply:{cid}:" in r]
    assert "Did you mean /vote approve?" in visible_text(reply)


def _concern_world() -> World:
    w = World()
    w.opened()
    w.say("writer", "/rfc open")
    w.say("carol", "/rfc concern naming")
    w.react("alice", "+1")
    w.react("bob", "+1")
    w.tick(w.now + timedelta(days=15))
    return w


def test_a_blocking_concern_makes_every_next_step_honest():
    w = _concern_world()
    (ended,) = [r for r in w.replies() if "comment period ended" in r]
    text = visible_text(ended)
    assert "waits for the blocking concern naming (raised by carol)" in text
    assert "committee members resolve it with /rfc resolve naming" in text
    assert "a committee member can write /rfc accept" not in text
    assert "/rfc accept is refused until then" in text
    status = visible_text(w.status())
    assert "Next step: The RFC waits for the blocking concern naming (raised by carol)" in status
    assert "naming (raised by carol): blocking" in status

    cid = w.say("bob", "/rfc accept")
    (refusal,) = [r for r in w.replies() if f"cvf:rfc-reply:{cid}:" in r]
    said = visible_text(refusal)
    assert said.startswith("@bob: not done: unresolved concerns: naming")
    assert "Instead: the RFC waits for the blocking concern naming (raised by carol); " \
           "committee members resolve it with /rfc resolve naming once addressed; " \
           "then write /rfc accept again." in said
    assert_our_markup_renders(refusal, "/rfc resolve naming", "/rfc accept")


def test_decided_rfc_facts_agree_with_the_front_matter():
    w = _concern_world()
    w.say("carol", "/rfc resolve naming")
    w.say("bob", "/rfc accept")
    status = w.status()
    text = visible_text(status)
    deciders = w.front()["decision"]["deciders"]
    assert f"deciders: {', '.join(deciders)}." in text
    assert "Comment period ended" in text and "left)" not in text
    assert re.search(r"Binding votes: 2 \(quorum 2, met\)", text)
    assert "0 comment" not in text and "(s)" not in text
    assert "naming (raised by carol): resolved" in text
    # One date format everywhere: "YYYY-MM-DD HH:MM UTC", never ISO with a T or seconds.
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text)
    assert not re.search(r"\d\d:\d\d:\d\d", text)
    assert_our_markup_renders(status)


def test_reminders_go_only_to_people_who_have_not_voted():
    config = RFC_CONFIG.replace("users: [alice, bob, carol]",
                                "users: [alice]\n    teams: [octo-org/reviewers]") \
        + "  reminder_before: 2d\n"
    w = World(config)
    w.gh.set_team("octo-org", "reviewers", ["bob", "carol"])
    w.opened()
    opened = w.now
    w.say("writer", "/rfc open")
    w.say("alice", "/vote approve")
    w.say("bob", "/vote approve")
    w.tick(opened + timedelta(days=12, hours=1))
    (reminder,) = [r for r in w.replies() if "Reminder" in r]
    assert "@carol" in reminder
    assert "@alice" not in reminder and "@bob" not in reminder
    assert "@octo-org/reviewers" not in reminder  # the team is named, not pinged
    assert "octo-org/reviewers" in visible_text(reminder)


def test_nobody_is_reminded_once_everyone_voted():
    w = World(RFC_CONFIG + "  reminder_before: 2d\n")
    w.opened()
    opened = w.now
    w.say("writer", "/rfc open")
    for who in ("alice", "bob", "carol"):
        w.say(who, "/vote approve")
    w.tick(opened + timedelta(days=12, hours=1))
    assert [r for r in w.replies() if "Reminder" in r] == []


def test_status_comment_with_hostile_and_ordinary_user_text():
    for text in (ORDINARY, HOSTILE):
        w = World()
        w.gh.update_pull(w.number, title=text)
        w.opened()
        w.say("writer", "/rfc open")
        w.say("alice", f"/vote approve {text}")
        status = w.status()
        assert literal_escapes(status) == []
        if text is HOSTILE:
            assert_user_text_stays_text(status.replace("<!-- cvf:rfc-status -->", "", 1))
        else:
            assert "setup.cfg" in code_spans(status)


# -- every comment template, with hostile and ordinary user text ---------------------------
def _outcome():
    from bot.rfc.tally import VoteRule, tally
    return tally([], rule=VoteRule(), is_binding=lambda u: True, binding_voters=["a"]).outcome


def _comment_templates(user: str) -> dict[str, str]:
    """Every markdown template people read, rendered with ``user`` in each user field."""
    from types import SimpleNamespace as NS

    from bot.rfc.lifecycle import help_lines
    alert = NS(severity="warning", reason=user, key=user,
               numbers={"error_rate": "12.5%", user: user})
    return {
        "reply.md.j2": reply_body("<!-- m -->", "dave", user, quote=user, details=[user],
                                  instead=user),
        "rfc/problem.md.j2": render("rfc/problem.md.j2", marker="<!-- p -->", paths=[],
                                    path=f"rfcs/{user}.md", resolved=False,
                                    errors=["RFC-003: add `title:` to the front matter", user]),
        "rfc/period-ended.md.j2": render("rfc/period-ended.md.j2", mentions="@alice",
                                         ends="2026-03-01 09:00 UTC", rule="2 of 3",
                                         outcome=_outcome(),
                                         waits=md("the blocking concern {}", user)),
        "rfc/reminder.md.j2": render("rfc/reminder.md.j2", ends="2026-03-01 09:00 UTC",
                                     mentions=md("{} (@bob)", user)),
        "rfc/help.md.j2": render("rfc/help.md.j2", lines=help_lines()),
        "metrics/alert-issue.md.j2": render("metrics/alert-issue.md.j2", marker="<!-- a -->",
                                            alert=alert, now="2026-03-01 09:00 UTC"),
        "metrics/alert-cleared.md.j2": render("metrics/alert-cleared.md.j2", key=user,
                                              now="2026-03-01 09:00 UTC"),
    }


@pytest.mark.parametrize("user", [ORDINARY, HOSTILE], ids=["ordinary", "hostile"])
def test_every_comment_template_escapes_user_text_and_not_ours(user):
    for name, body in _comment_templates(user).items():
        assert literal_escapes(body) == [], (name, visible_text(body))
        if user is HOSTILE:
            assert_user_text_stays_text(body)


def test_every_template_is_rendered_by_some_test():
    """A new template must be added to a rendering test (here, the browser test, or the
    handler tests listed), so nobody ships markup that was never looked at rendered."""
    elsewhere = {
        # rendered through the handlers above and in test_routing_handler / cert tests
        "rfc/status-comment.md.j2", "routing/report.md.j2", "certification/exam.md",
        "certification/result.md", "certification/review.md", "certification/catalog.md",
        "certification/progress.txt", "rfc/index.md.j2", "rfc/index-stats.md.j2",
        "rfc/new-rfc.md.j2", "action/summary.md.j2", "metrics/report.md.j2",
        "metrics/risk-raise-rfc.md.j2",
        # pages: tests/test_metrics_browser.py
        "metrics/dashboard.html.j2", "metrics/_chart.html.j2",
        # the sign-in page: tests/test_dashboard_login.py
        "metrics/login.html.j2",
        # the App manifest flow's pages: tests/test_app_manifest_flow.py
        "app/manifest.html.j2",
    }
    found = {str(p.relative_to(templates_dir())) for p in templates_dir().rglob("*")
             if p.is_file() and p.name != ".keep"}
    missing = found - elsewhere - set(_comment_templates(ORDINARY))
    assert missing == set()




# -- routing: report, check-run text and refusals ------------------------------------------
@pytest.fixture
def routing_gh():
    from tests.fake_github import FakeGitHub
    from tests.test_routing_handler import BOT
    gh = FakeGitHub(bot_login=BOT)
    gh.set_team("octo-org", "release", ["rita"])
    gh.set_team("octo-org", "risk-board", ["boris"])
    return gh


def test_routing_report_and_check_text_render_code_not_escapes(routing_gh):
    from tests.test_routing_handler import CHECK, deliver, open_pull, report
    sha = open_pull(routing_gh, {"src/app.py": "x", "setup.cfg": "y",
                                 ".github/workflows/ci.yml": "z"})
    deliver(routing_gh, "pull_request", "opened")
    body = report(routing_gh)
    assert_our_markup_renders(body, "setup.cfg", "/approve-risk <reason>")
    run = routing_gh.check_run(CHECK, sha)
    assert_our_markup_renders(run.output.text or "", "setup.cfg")
    assert literal_escapes(run.output.summary or "") == []


def test_routing_refusal_uses_the_shared_reply_format(routing_gh):
    from tests.test_routing_handler import deliver, open_pull
    open_pull(routing_gh, {".github/workflows/ci.yml": "x"})
    deliver(routing_gh, "pull_request", "opened")
    said = routing_gh.add_comment(7, "manny", "/approve-risk looks fine")
    deliver(routing_gh, "issue_comment", "created", sender="manny",
            comment={"id": said.id, "body": said.body, "html_url": said.html_url})
    refusal = routing_gh.bot_comments(7)[-1].body
    text = visible_text(refusal)
    assert text.startswith("@manny: only members of committee")
    assert "Instead: ask one of them (" in text and "/approve-risk <reason>" in code_spans(
        refusal)
    assert "In response to this:" in text and "/approve-risk looks fine" in code_spans(refusal)
    assert f'<a href="{said.html_url}">this</a>' in to_html(refusal)


# -- certification replies ------------------------------------------------------------------
def test_certification_replies_share_the_format_and_show_the_yaml_fence(monkeypatch):
    from tests.fake_github import FakeGitHub
    from tests.test_cert_handler import BOT, PRIVATE, ROOT, answer_key_text, comment
    monkeypatch.setenv("CVF_CERT_ANSWER_KEY", answer_key_text())
    monkeypatch.setenv("CVF_CERT_SIGNING_KEY", PRIVATE.decode())
    gh = FakeGitHub(bot_login=BOT)
    for path in (ROOT / "certification").rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".json", ".pem"):
            gh.put_file(str(path.relative_to(ROOT)), path.read_text("utf-8"))
    gh.put_file("certification/registry.json", None)
    comment(gh, 2, "bob", "/cert reqest foundation")
    (reply,) = [c.body for c in gh.bot_comments(2)]
    text = visible_text(reply)
    assert text.startswith("@bob: /cert reqest is not a certification command. "
                           "Did you mean /cert request?")
    assert "```yaml" in code_spans(reply) and "/cert request <level>" in code_spans(reply)
    assert "In response to this:" in text
    assert_our_markup_renders(reply)
    comment(gh, 3, "dave", "/cert submit")
    (reply,) = [c.body for c in gh.bot_comments(3)]
    assert visible_text(reply).startswith("@dave: /cert submit needs your answers in a "
                                          "fenced ```yaml block")
    assert_our_markup_renders(reply, "```yaml", "/cert submit")
