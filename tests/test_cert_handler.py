"""Certification on GitHub, driven by real webhook payloads against the in-memory GitHub:
what a candidate and a reviewer see, what lands in the repository, and redeliveries."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.certification.credential import generate_keypair, load_public_key, verify_credential
from bot.certification.exam import draw_exam
from bot.certification.materials import Materials
from bot.certification.registry import parse_registry, with_certificate
from bot.config import parse_config
from bot.events import Event
from bot.handlers import certification as handler
from tests.conftest import load_payload
from tests.fake_github import FakeGitHub

ROOT = Path(__file__).resolve().parent.parent
BOT = "cvf-governance[bot]"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONFIG = """
certification:
  issuer: {id: "https://github.com/octo-org", name: Octo Certification}
  reviewers: {bootstrap: [rev1, rev2, rev3], required: 2, spread: 10}
"""
PRIVATE, PUBLIC = generate_keypair()


def answer_key_text() -> str:
    bank = (ROOT / "certification/questions/foundation.yml").read_text("utf-8")
    ids = re.findall(r"- id: (F-\d{3})", bank)
    return "level: foundation\nanswers:\n" + "".join(f"  {i}: a\n" for i in ids)


@pytest.fixture
def gh(monkeypatch) -> FakeGitHub:
    monkeypatch.setenv("CVF_CERT_ANSWER_KEY", answer_key_text())
    monkeypatch.setenv("CVF_CERT_SIGNING_KEY", PRIVATE.decode())
    gh = FakeGitHub(bot_login=BOT)
    for path in (ROOT / "certification").rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".json", ".pem"):
            gh.put_file(str(path.relative_to(ROOT)), path.read_text("utf-8"))
    gh.put_file("certification/registry.json", None)  # start with no records
    return gh


def event(name: str, action: str, payload: dict[str, Any], *, now: datetime = NOW,
          config: str = CONFIG) -> Event:
    payload["action"] = action
    payload["repository"]["full_name"] = "octo-org/governance"
    payload["repository"]["html_url"] = "https://github.com/octo-org/governance"
    return Event(name=name, payload=payload, config=parse_config(config), now=now)


def run(gh: FakeGitHub, ev: Event) -> None:
    handlers = [h for h in handler.router.handlers_for(ev) if h.__module__ == handler.__name__]
    assert handlers, f"no certification handler for {ev.name}.{ev.action}"
    for h in handlers:
        h(ev, gh)


def comment(gh: FakeGitHub, number: int, login: str, body: str, *, now: datetime = NOW,
            config: str = CONFIG) -> Event:
    if number not in gh.issues and number not in gh.pulls:
        gh.add_issue(number, author=login)
    stored = gh.add_comment(number, login, body)
    payload = load_payload("issue_comment", "created")
    payload["issue"]["number"] = number
    payload["comment"].update(id=stored.id, body=body, user={"login": login, "type": "User"},
                              html_url=stored.html_url)
    payload["sender"] = {"login": login, "type": "User"}
    ev = event("issue_comment", "created", payload, now=now, config=config)
    run(gh, ev)
    return ev


def open_pull(gh: FakeGitHub, number: int, author: str, files: dict[str, str | None], *,
              now: datetime = NOW, action: str = "opened", config: str = CONFIG) -> Event:
    if number not in gh.pulls:
        gh.add_pull(number, author=author, files=files)
    payload = load_payload("pull_request", "opened")
    payload["number"] = number
    payload["pull_request"]["number"] = number
    payload["sender"] = {"login": author, "type": "User"}
    ev = event("pull_request", action, payload, now=now, config=config)
    run(gh, ev)
    return ev


def bot_text(gh: FakeGitHub, number: int) -> str:
    """The bot's comments as a reader sees them (markdown escapes rendered away)."""
    return html.unescape("\n".join(c.body for c in gh.bot_comments(number)).replace("\\", ""))


def registry(gh: FakeGitHub):
    return parse_registry(gh.file_text("certification/registry.json"))


def paper(login: str, attempt: int = 1):
    materials = Materials(parse_config(CONFIG).section("certification"),
                          lambda p: (ROOT / p).read_text("utf-8"))
    level = materials.program.level("foundation")
    return draw_exam(materials.bank("foundation"), level, login, attempt, 4)


def answers_yaml(login: str, *, wrong: int = 0, attempt: int = 1) -> str:
    lines = ["level: foundation", f"attempt: {attempt}", "answers:"]
    for index, item in enumerate(paper(login, attempt).items):
        pick = next(c for c in item.choices if (c.option == "a") != (index < wrong))
        lines.append(f"  {item.question_id}: {pick.letter}")
    return "\n".join(lines) + "\n"


def hold(gh: FakeGitHub, login: str, level: str) -> None:
    entry = {"id": f"urn:uuid:seed-{login}-{level}", "login": login, "level": level,
             "attempt": 1, "score": 90, "issued": "2026-01-01T00:00:00Z", "valid_until": None,
             "file": "x.json", "evidence": "https://github.com/octo-org/governance/pull/1"}
    gh.put_file("certification/registry.json",
                with_certificate(gh.file_text("certification/registry.json"), entry))


# -- requests ------------------------------------------------------------------------
def test_request_posts_the_candidates_own_paper_once(gh):
    comment(gh, 1, "alice", "/cert request foundation")
    text = bot_text(gh, 1)
    assert "CVF Foundation exam — attempt 1 for @alice" in text
    for item in paper("alice").items:
        assert f"`{item.question_id}`" in text
    assert "certification/submissions/alice/foundation.yml" in text
    assert [a["status"] for a in registry(gh).attempts] == ["open"]
    writes = len(gh.stats.write_log)
    comment(gh, 1, "alice", "/cert request foundation")  # asking again in the same issue
    assert len(gh.stats.write_log) == writes  # the same exam, nothing new


def test_redelivered_request_changes_nothing(gh):
    ev = comment(gh, 1, "alice", "/cert request foundation")
    writes = len(gh.stats.write_log)
    run(gh, ev)
    assert len(gh.stats.write_log) == writes


def test_prerequisites_are_checked(gh):
    comment(gh, 2, "bob", "/cert request architect")
    assert "no new architect exam: architect needs practitioner first" in bot_text(gh, 2)
    assert registry(gh).attempts == []


def test_unknown_level_and_unknown_command_get_answers(gh):
    comment(gh, 2, "bob", "/cert request fundation\n/cert frobnicate")
    text = bot_text(gh, 2)
    assert "unknown level 'fundation'" in text and "did you mean 'foundation'" in text
    assert "unknown `/cert` command" in text


def test_the_issue_form_requests_an_exam(gh):
    gh.add_issue(5, author="carol", labels=["exam-request"])
    payload = load_payload("issues", "opened")
    payload["issue"].update(number=5, user={"login": "carol"}, labels=[{"name": "exam-request"}],
                            body="### Level\n\nfoundation\n\n### Honour code\n\n- [X] I will")
    payload["sender"] = {"login": "carol"}
    run(gh, event("issues", "opened", payload))
    assert "CVF Foundation exam — attempt 1 for @carol" in bot_text(gh, 5)


# -- multiple choice -----------------------------------------------------------------
def test_pr_submission_is_graded_at_once_and_certified(gh):
    comment(gh, 1, "alice", "/cert request foundation")
    open_pull(gh, 10, "alice", {"certification/submissions/alice/foundation.yml":
                                answers_yaml("alice", wrong=3)})
    text = bot_text(gh, 10)
    assert "CVF Foundation — attempt 1 for @alice: **passed**" in text
    assert "Score **75/100** (pass score 70)" in text
    # per objective, pooled within a module while each has too few questions to stand alone
    assert re.search(r"\| F1\.\d(, F1\.\d)* \| RFCs and how decisions are made \| \d/4 \|", text)
    for item in paper("alice").items:  # never which answer was right
        assert item.question_id not in text
    cert_path = "certification/certificates/alice-foundation-1.json"
    assert f"https://github.com/octo-org/governance/blob/main/{cert_path}" in text
    credential = gh.file_text(cert_path)
    assert credential is not None
    result = verify_credential(credential, public_key=load_public_key(PUBLIC), now=NOW)
    assert result.ok and (result.login, result.level, result.score) == ("alice", "foundation", "75")
    doc = json.loads(credential)
    assert doc["evidence"][0]["id"] == "https://github.com/octo-org/governance/pull/10"
    assert doc["issuer"]["id"] == "https://github.com/octo-org"
    reg = registry(gh)
    assert [(c["login"], c["level"], c["score"]) for c in reg.certificates] == [
        ("alice", "foundation", 75)]
    assert reg.attempts[0]["status"] == "passed"


def test_redelivered_submission_is_not_graded_twice(gh):
    comment(gh, 1, "alice", "/cert request foundation")
    files = {"certification/submissions/alice/foundation.yml": answers_yaml("alice")}
    ev = open_pull(gh, 10, "alice", files)
    writes = len(gh.stats.write_log)
    run(gh, ev)
    open_pull(gh, 10, "alice", files, action="synchronize")
    assert len(gh.stats.write_log) == writes
    assert len(registry(gh).certificates) == 1


def test_comment_submission_that_fails_then_cooldown_then_retake(gh):
    comment(gh, 1, "alice", "/cert request foundation")
    comment(gh, 1, "alice", "/cert submit\n```yaml\n" + answers_yaml("alice", wrong=5) + "```")
    text = bot_text(gh, 1)
    assert "attempt 1 for @alice: **not passed**" in text
    assert "Score **58/100**" in text
    assert "request a retake from 2026-03-08T12:00:00Z" in text
    comment(gh, 1, "alice", "/cert request foundation", now=NOW + timedelta(days=3))
    assert "a retake of foundation is possible from 2026-03-08T12:00:00Z" in bot_text(gh, 1)
    comment(gh, 3, "alice", "/cert request foundation", now=NOW + timedelta(days=8))
    assert "attempt 2 for @alice" in bot_text(gh, 3)
    assert [a["attempt"] for a in registry(gh).attempts] == [1, 2]
    assert registry(gh).certificates == []


def test_bad_submissions_get_clear_messages(gh):
    comment(gh, 1, "alice", "/cert request foundation")
    open_pull(gh, 11, "mallory", {"certification/submissions/alice/foundation.yml": "level: x"})
    assert ("certification/submissions/alice/foundation.yml: a submission must be "
            "certification/submissions/mallory/<level>.yml — you can only submit in your own "
            "folder") in bot_text(gh, 11)

    open_pull(gh, 12, "alice", {"certification/submissions/alice/foundation.yml":
                                "level: practitioner\nassignment: rfc-to-tests\n"})
    assert ("the file is named for 'foundation' but says level: practitioner"
            in bot_text(gh, 12))

    good = answers_yaml("alice").splitlines()
    broken = [line for line in good if not line.startswith("  ")][:3] + good[4:] + [
        "  F-999: A"]
    open_pull(gh, 13, "alice", {"certification/submissions/alice/foundation.yml":
                                "\n".join(broken) + "\n"})
    text = bot_text(gh, 13)
    first = paper("alice").items[0].question_id
    assert "answers.F-999: no question 'F-999' on your paper (attempt 1)" in text
    assert f"missing answers for {first}" in text

    comment(gh, 14, "dave", "/cert submit\n```yaml\nlevel: foundation\nanswers: {F-001: A}\n```")
    assert "you have no open foundation exam; request one with `/cert request foundation`" \
        in bot_text(gh, 14)
    comment(gh, 15, "dave", "/cert submit")
    assert "needs your answers in a fenced `` ```yaml `` block" in bot_text(gh, 15)
    assert registry(gh).attempts[0]["status"] == "open"  # none of it counted


def test_grading_is_refused_without_the_secret_answer_key(gh, monkeypatch):
    monkeypatch.delenv("CVF_CERT_ANSWER_KEY")
    comment(gh, 1, "alice", "/cert request foundation")
    open_pull(gh, 10, "alice", {"certification/submissions/alice/foundation.yml":
                                answers_yaml("alice")})
    text = bot_text(gh, 10)
    assert "this exam cannot be graded yet: the answer key is not configured" in text
    assert "CVF_CERT_ANSWER_KEY" in text
    assert registry(gh).attempts[0]["status"] == "open"


def test_a_pass_without_the_signing_key_says_so(gh, monkeypatch):
    monkeypatch.delenv("CVF_CERT_SIGNING_KEY")
    comment(gh, 1, "alice", "/cert request foundation")
    open_pull(gh, 10, "alice", {"certification/submissions/alice/foundation.yml":
                                answers_yaml("alice")})
    text = bot_text(gh, 10)
    assert "**passed**" in text and "CVF_CERT_SIGNING_KEY secret is not set" in text
    assert registry(gh).certificates == []


# -- reviewer grading ----------------------------------------------------------------
PRACTICAL = ("level: practitioner\nattempt: 1\nassignment: rfc-to-tests\n"
             "work: ['https://github.com/octo-org/governance/pull/77']\n")


def grade_line(score: int) -> str:
    return (f"/grade spec={score} acceptance={score} tests={score} config={score} "
            f"communication={score}")


def test_reviewers_grade_disagree_then_agree(gh):
    hold(gh, "alice", "foundation")
    comment(gh, 1, "alice", "/cert request practitioner")
    assert "`rfc-to-tests`" in bot_text(gh, 1)
    open_pull(gh, 20, "alice", {"certification/submissions/alice/practitioner.yml": PRACTICAL})
    attempt = registry(gh).attempts[-1]
    assert attempt["status"] == "reviewing" and len(attempt["reviewers"]) == 2
    first, second = attempt["reviewers"]
    assert f"@{first}" in bot_text(gh, 20) and "waiting for grades (0 of 2)" in bot_text(gh, 20)

    comment(gh, 20, "alice", grade_line(100))
    assert "you cannot grade your own exam" in bot_text(gh, 20)
    comment(gh, 20, "mallory", grade_line(100))
    assert "only reviewers holding practitioner or above" in bot_text(gh, 20)
    comment(gh, 20, first, "/grade spec=80 tests=70")
    assert "missing scores for acceptance, config, communication" in bot_text(gh, 20)

    comment(gh, 20, first, grade_line(60))
    comment(gh, 20, second, grade_line(90))
    text = bot_text(gh, 20)
    assert "reviewers disagree by more than the allowed spread" in text
    third = next(r for r in ("rev1", "rev2", "rev3") if r not in (first, second))
    assert f"@{third}" in text
    assert registry(gh).attempts[-1]["reviewers"] == [first, second, third]

    comment(gh, 20, third, grade_line(84))
    text = bot_text(gh, 20)
    assert f"agreed: 87/100 from {third}, {second}" in text
    assert "CVF Practitioner — attempt 1 for @alice: **passed**" in text
    assert gh.file_text("certification/certificates/alice-practitioner-1.json") is not None
    writes = len(gh.stats.write_log)
    comment(gh, 20, first, grade_line(10))  # after the decision: nothing changes
    assert len(gh.stats.write_log) == writes
    assert registry(gh).attempts[-1]["score"] == 87


def test_rubric_submission_needs_a_known_assignment(gh):
    hold(gh, "alice", "foundation")
    comment(gh, 1, "alice", "/cert request practitioner")
    open_pull(gh, 20, "alice", {"certification/submissions/alice/practitioner.yml":
                                "level: practitioner\nassignment: essay\nwork: [x]\n"})
    assert ("assignment: choose one of rfc-to-tests, govern-a-repo, weekly-report, "
            "vote-rules-per-type, scope-guard-rollout, agent-api-ingest, comment-period-tick, "
            "approval-roles, rfc-lint-rule, certified-votes, alert-issues, fix-a-config "
            "(got 'essay')" in bot_text(gh, 20))


# -- scenario simulation -------------------------------------------------------------
def test_scenario_exam_is_graded_by_replay(gh):
    pytest.importorskip("bot.routing")
    hold(gh, "sam", "architect")
    comment(gh, 1, "sam", "/cert request specialist")
    assert "`failing-agent`" in bot_text(gh, 1)
    submission = """level: specialist
scenario: failing-agent
routing:
  risk_levels: {run-job: R0, rotate-secrets: R2}
  capacities: {executor-1: 3, executor-2: 3, executor-3: 3}
alerts: {error_rate: 0.3, window: 5, min_executions: 2}
"""
    open_pull(gh, 30, "sam", {"certification/submissions/sam/specialist.yml": submission})
    text = bot_text(gh, 30)
    assert "CVF Specialist — attempt 1 for @sam: **passed**" in text
    assert "agents drained: executor-2 at t=70s" in text
    assert gh.file_text("certification/certificates/sam-specialist-1.json") is not None


def test_scenario_submission_missing_skills_is_answered(gh):
    pytest.importorskip("bot.routing")
    hold(gh, "sam", "architect")
    comment(gh, 1, "sam", "/cert request specialist")
    open_pull(gh, 30, "sam", {"certification/submissions/sam/specialist.yml":
                              "level: specialist\nscenario: failing-agent\nrouting:\n"
                              "  risk_levels: {run-job: R0}\n"})
    text = bot_text(gh, 30)
    assert "routing.risk_levels: give a risk level for rotate-secrets" in text
    assert "routing.capacities: declare a capacity for executor-1, executor-2, executor-3" in text


# -- the gate other concerns call ----------------------------------------------------
GATED = CONFIG + """  gates:
    rfc_votes: {breaking_change: architect}
    routing_approvals: {R2: practitioner, R3: specialist}
"""


def test_level_gate_reads_the_registry_and_revocations(gh):
    hold(gh, "alice", "practitioner")
    config = parse_config(GATED)
    gate = handler.level_gate(gh, config, NOW)
    assert gate.holds("alice", "foundation") and not gate.holds("alice", "architect")
    check = handler.routing_level_check(config, gh, NOW)
    assert check("alice", "R2") and not check("alice", "R3") and check("bob", "R1")
    vote = handler.rfc_vote_check(config, gh, NOW)
    assert not vote("alice", "breaking_change") and vote("alice", "standard")
    gh.put_file("certification/revocations.yml",
                "revoked:\n  - {id: 'urn:uuid:seed-alice-practitioner', reason: test}\n")
    assert not handler.routing_level_check(config, gh, NOW)("alice", "R2")


def test_no_gate_configured_reads_nothing(gh):
    config = parse_config(CONFIG)
    before = gh.stats.requests
    assert handler.routing_level_check(config, gh)("anyone", "R3")
    assert handler.rfc_vote_check(config, gh)("anyone", "breaking_change")
    assert gh.stats.requests == before


def test_gate_in_rfc_voting_keeps_uncertified_votes_non_binding(gh):
    tally_mod = pytest.importorskip("bot.rfc.tally")
    hold(gh, "ann", "architect")
    hold(gh, "ben", "practitioner")
    vote = handler.rfc_vote_check(parse_config(GATED), gh, NOW)
    committee = {"ann", "ben"}

    def binding(login: str) -> bool:
        return login in committee and vote(login, "breaking_change")

    signals = [tally_mod.Signal(user, "approve", NOW, "comment", ref=i)
               for i, user in enumerate(("ann", "ben"))]
    result = tally_mod.tally(signals, rule=tally_mod.VoteRule(quorum=1), is_binding=binding)
    assert {v.login: v.binding for v in result.voters} == {"ann": True, "ben": False}


def test_gate_in_routing_refuses_an_uncertified_r2_approval(gh):
    routing = pytest.importorskip("bot.handlers.routing")
    config = GATED + """routing:
  agents: [{id: executor-1, capabilities: [deploy]}]
  skills: [{id: deploy-prod, risk_level: R2, required_capabilities: [deploy], paths: ["deploy/**"]}]
  roles:
    approval_manager: {users: [rita]}
"""
    hold(gh, "rita", "foundation")
    pull = gh.add_pull(7, author="author", files={"deploy/prod.yml": "x"})
    gh.add_review(7, "rita")
    routing.set_level_check(handler.routing_level_check)
    try:
        payload = load_payload("pull_request", "opened")
        payload["number"] = payload["pull_request"]["number"] = 7
        ev = Event(name="pull_request", payload=payload, config=parse_config(config), now=NOW)
        payload["repository"]["full_name"] = gh.repo
        for h in handler.router.handlers_for(ev):
            if h.__module__ == routing.__name__:
                h(ev, gh)
        assert "rita (lacks the certification level for R2)" in bot_text(gh, 7)
        check = gh.check_run("cvf/routing", pull.head_sha)
        assert check is not None and check.conclusion != "success"
        hold(gh, "rita", "practitioner")
        for h in handler.router.handlers_for(ev):
            if h.__module__ == routing.__name__:
                h(ev, gh)
        check = gh.check_run("cvf/routing", pull.head_sha)
        assert check is not None and check.conclusion == "success"
    finally:
        routing.set_level_check(handler.routing_level_check)


def test_a_pull_request_editing_bot_records_fails_the_certification_check(gh):
    pull = gh.add_pull(40, author="mallory", files={
        "certification/registry.json": '{"version": 1, "certificates": [], "attempts": []}',
        "certification/certificates/mallory-specialist-1.json": "{}"})
    open_pull(gh, 40, "mallory", {})
    check = gh.check_run("cvf/certification", pull.head_sha)
    assert check is not None and check.conclusion == "failure"
    assert "certification/certificates/mallory-specialist-1.json" in check.output.summary


def test_pull_requests_elsewhere_cost_one_call_and_write_nothing(gh):
    gh.add_pull(41, author="dev", files={"src/app.py": "print()"})
    before = gh.stats.requests
    open_pull(gh, 41, "dev", {})
    assert gh.stats.requests - before == 1 and gh.stats.write_log == []


def test_the_exam_post_gives_each_assignment_its_starting_point_and_checks(gh):
    hold(gh, "alice", "foundation")
    comment(gh, 1, "alice", "/cert request practitioner")
    text = bot_text(gh, 1)
    assert "### `fix-a-config` — Repairing a broken configuration" in text
    assert "Starting point: A `.github/cvf.yml` with seven mistakes (provided)" in text
    assert "A reviewer checks:\n- all seven problems are found and fixed" in text
    hold(gh, "sam", "architect")
    comment(gh, 2, "sam", "/cert request specialist")
    text = bot_text(gh, 2)
    assert "### `incident-replay` — The Tuesday incident, from the records" in text
    assert "failing_from: <trace second of its first failed execution>" in text
