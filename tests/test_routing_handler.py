"""The `cvf/routing` gate on pull requests, driven by real webhook payloads against the
in-memory GitHub: what a contributor sees in the report comment and the check run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.config import parse_config
from bot.events import Event, load_handlers
from bot.handlers import routing as routing_handler
from tests.conftest import load_payload
from tests.fake_github import FakeGitHub

CONFIG = """
rfc:
  committee:
    users: [chair]
    teams: [octo-org/risk-board]
routing:
  agents:
    - {id: executor-1, capabilities: [deploy, execute], capacity: 2}
    - {id: executor-2, capabilities: [deploy], capacity: 2}
    - {id: doc-bot, capabilities: [write]}
  skills:
    - {id: docs, risk_level: R0, required_capabilities: [write], paths: ["docs/**"]}
    - {id: app-code, risk_level: R1, required_capabilities: [execute], paths: ["src/"]}
    - {id: deploy-prod, risk_level: R2, required_capabilities: [deploy],
       paths: ["deploy/**", "*.tf"]}
    - {id: secrets, risk_level: R3, required_capabilities: [execute], paths: [".github/workflows/"]}
  roles:
    approval_manager: {users: [manny], teams: [octo-org/release]}
"""
BOT = "cvf-governance[bot]"
CHECK = "cvf/routing"


@pytest.fixture
def gh() -> FakeGitHub:
    gh = FakeGitHub(bot_login=BOT)
    gh.set_team("octo-org", "release", ["rita"])
    gh.set_team("octo-org", "risk-board", ["boris"])
    return gh


def deliver(gh: FakeGitHub, name: str, action: str, *, number: int = 7, sender: str = "author",
            config: str = CONFIG, **extra: Any) -> Event:
    payload = load_payload(name, action)
    payload["repository"]["full_name"] = gh.repo
    payload["sender"]["login"] = sender
    if "pull_request" in payload:
        payload["pull_request"]["number"] = number
        payload["number"] = number
    if "issue" in payload:
        payload["issue"]["number"] = number
        payload["issue"]["pull_request"] = {"url": f"https://api.github.com/pulls/{number}"}
    for key, value in extra.items():
        payload[key] = value
    event = Event(name=name, payload=payload, config=parse_config(config))
    handlers = [h for h in load_handlers().handlers_for(event)
                if h.__module__ == routing_handler.__name__]
    assert handlers, f"no routing handler for {name}.{action}"
    for handler in handlers:
        handler(event, gh)
    return event


def open_pull(gh: FakeGitHub, files: dict[str, str | None], *, labels: tuple[str, ...] = (),
              number: int = 7) -> str:
    return gh.add_pull(number, files=files, author="author", labels=labels).head_sha


def push(gh: FakeGitHub, number: int = 7, sha: str = "f" * 40) -> str:
    gh.update_pull(number, head_sha=sha)
    return sha


def report(gh: FakeGitHub, number: int = 7) -> str:
    found = [c.body for c in gh.bot_comments(number) if routing_handler.MARKER in c.body]
    assert len(found) == 1, f"expected one routing report, got {len(found)}"
    return found[0]


def check(gh: FakeGitHub, sha: str) -> tuple[str, str | None, str]:
    run = gh.check_run(CHECK, sha)
    assert run is not None
    return run.status, run.conclusion, run.output.title


def test_r0_docs_change_passes_and_reports_the_agent(gh):
    sha = open_pull(gh, {"docs/guide.md": "hello"})
    event = deliver(gh, "pull_request", "opened")
    assert check(gh, sha) == ("completed", "success", "R0: auto-execute")
    body = report(gh)
    assert "Routing: R0 · auto-execute" in body  # words, not auto_execute
    assert "| docs | R0 | 1 | doc-bot |" in body
    assert event.outputs["risk-level"] == "R0"
    record = json.loads(event.outputs["routing-record"])
    assert record["kind"] == "decision" and record["gate"] == "passed"
    assert record["decision"] == "auto_execute" and record["agent"] == "doc-bot"
    assert "success" not in record  # a decision is not an execution


def test_r1_fails_naming_paths_outside_scope_and_passes_once_they_leave(gh):
    sha = open_pull(gh, {"src/app.py": "x", "Makefile": "y"})
    deliver(gh, "pull_request", "opened")
    status, conclusion, title = check(gh, sha)
    assert (status, conclusion) == ("completed", "failure")
    assert "1 path(s) outside" in title
    assert "Makefile" in gh.check_run(CHECK, sha).output.summary
    assert "Makefile" in report(gh)

    gh.pull_files[7] = [f for f in gh.pull_files[7] if f.filename != "Makefile"]
    sha2 = push(gh)
    deliver(gh, "pull_request", "synchronize")
    assert check(gh, sha2)[:2] == ("completed", "success")


def test_r2_waits_for_an_approver_then_passes(gh):
    sha = open_pull(gh, {"deploy/prod.yml": "x"})
    deliver(gh, "pull_request", "opened")
    status, conclusion, title = check(gh, sha)
    assert (status, conclusion) == ("in_progress", None)
    assert title == "R2: waiting for approval by approval_manager"
    assert "**Approvers needed:** approval\\_manager (manny, octo-org/release)" in report(gh)

    gh.add_review(7, "random-dev")  # not in the role
    deliver(gh, "pull_request_review", "submitted", sender="random-dev")
    assert check(gh, sha)[:2] == ("in_progress", None)
    assert "random-dev (not in approval\\_manager)" in report(gh)

    gh.add_review(7, "rita")  # in the release team
    event = deliver(gh, "pull_request_review", "submitted", sender="rita")
    assert check(gh, sha) == ("completed", "success", "R2: approved by rita")
    record = json.loads(event.outputs["routing-record"])
    assert record["decision"] == "approval_required" and record["agent"] == "executor-1"
    assert record["approval_role"] == "approval_manager"
    assert record["approvers"] == ["manny", "octo-org/release"]
    states = [(r["state"], r["by"]) for r in json.loads(event.outputs["routing-records"])[1:]]
    assert states == [("requested", None), ("granted", "rita")]


def test_r2_approval_before_a_push_does_not_count_until_renewed(gh):
    old = open_pull(gh, {"deploy/prod.yml": "x"})
    gh.add_review(7, "manny", commit_id=old)
    deliver(gh, "pull_request_review", "submitted", sender="manny")
    assert check(gh, old)[1] == "success"

    new = push(gh)
    deliver(gh, "pull_request", "synchronize")
    assert check(gh, new)[:2] == ("in_progress", None)
    assert "given before the latest push: manny" in report(gh)

    gh.add_review(7, "manny", commit_id=new)  # the approval arrives after the push
    deliver(gh, "pull_request_review", "submitted", sender="manny")
    assert check(gh, new)[1] == "success"


def test_r2_old_approvals_count_when_configured(gh):
    config = CONFIG + "  approvals_survive_push: true\n"
    old = open_pull(gh, {"deploy/prod.yml": "x"})
    gh.add_review(7, "manny", commit_id=old)
    new = push(gh)
    deliver(gh, "pull_request", "synchronize", config=config)
    assert check(gh, new)[1] == "success"


def test_r2_dismissed_review_reopens_the_gate(gh):
    sha = open_pull(gh, {"main.tf": "x"})
    review = gh.add_review(7, "manny")
    deliver(gh, "pull_request_review", "submitted", sender="manny")
    assert check(gh, sha)[1] == "success"

    gh.reviews[7] = [r if r.id != review.id else type(r)(
        id=r.id, author=r.author, state="DISMISSED", commit_id=r.commit_id,
        submitted_at=r.submitted_at) for r in gh.reviews[7]]
    deliver(gh, "pull_request_review", "dismissed", sender="someone")
    assert check(gh, sha)[:2] == ("in_progress", None)
    assert "Dismissed reviews: manny" in report(gh)


def test_r3_is_pending_until_a_committee_member_approves_risk(gh):
    sha = open_pull(gh, {".github/workflows/ci.yml": "x"})
    event = deliver(gh, "pull_request", "opened")
    # Waiting is pending, with R2's words: not a failure.
    assert check(gh, sha) == ("in_progress", None, "R3: waiting for approval by committee")
    assert json.loads(event.outputs["routing-record"])["gate"] == "pending"

    outsider = gh.add_comment(7, "manny", "/approve-risk looks fine")
    deliver(gh, "issue_comment", "created", sender="manny",
            comment={"id": outsider.id, "body": outsider.body})
    assert check(gh, sha)[:2] == ("in_progress", None)
    refusal = gh.bot_comments(7)[-1].body
    assert "@manny: only members of committee" in refusal
    assert "In response to [this](" in refusal and "looks fine" in refusal

    ok = gh.add_comment(7, "boris", "/approve-risk rotated keys reviewed with security")
    deliver(gh, "issue_comment", "created", sender="boris",
            comment={"id": ok.id, "body": ok.body})
    assert check(gh, sha) == ("completed", "success",
                              "R3: human intervention recorded by boris")
    assert "rotated keys reviewed with security" in report(gh)
    assert [r.content for r in gh.comment_reactions[ok.id]] == ["+1"]

    new = push(gh)  # a new push needs a new human decision
    deliver(gh, "pull_request", "synchronize")
    assert check(gh, new)[:2] == ("in_progress", None)


def test_redelivered_events_write_nothing_new(gh):
    open_pull(gh, {".github/workflows/ci.yml": "x"})
    deliver(gh, "pull_request", "opened")
    refused = gh.add_comment(7, "manny", "/approve-risk")
    deliver(gh, "issue_comment", "created", sender="manny",
            comment={"id": refused.id, "body": refused.body})
    writes = len(gh.stats.write_log)
    comments = len(gh.comments_on(7))
    deliver(gh, "issue_comment", "created", sender="manny",
            comment={"id": refused.id, "body": refused.body})
    deliver(gh, "pull_request", "opened")
    assert len(gh.comments_on(7)) == comments
    # Nothing at all is written: no comment, and the check run already shows the same
    # (issue 15: an unchanged check run is not set again).
    assert gh.stats.write_log[writes:] == []


def test_approve_risk_on_a_lower_risk_pull_is_refused(gh):
    open_pull(gh, {"deploy/x": "y"})
    comment = gh.add_comment(7, "chair", "/approve-risk")
    deliver(gh, "issue_comment", "created", sender="chair",
            comment={"id": comment.id, "body": comment.body})
    refusals = [c.body for c in gh.bot_comments(7) if "cvf:routing-reply" in c.body]
    assert len(refusals) == 1
    assert "this one is R2, so it needs an approving review" in refusals[0]


def test_label_raises_risk_for_anyone(gh):
    sha = open_pull(gh, {"docs/a.md": "x"}, labels=("risk: R2",))
    deliver(gh, "pull_request", "labeled", sender="author", label={"name": "risk: R2"})
    assert check(gh, sha)[:2] == ("in_progress", None)
    assert "Risk raised from R0 to R2" in report(gh)


def test_lowering_label_needs_a_committee_member(gh):
    sha = open_pull(gh, {"deploy/prod.yml": "x"}, labels=("risk: R0",))
    deliver(gh, "pull_request", "labeled", sender="author", label={"name": "risk: R0"})
    assert check(gh, sha)[:2] == ("in_progress", None)
    assert any("@author: you cannot lower the risk" in c.body for c in gh.bot_comments(7))
    assert "needs a committee member" in report(gh)

    deliver(gh, "pull_request", "labeled", sender="chair", label={"name": "risk: R0"})
    assert check(gh, sha)[:2] == ("completed", "success")
    assert "added by committee member chair" in report(gh)
    deliver(gh, "pull_request", "synchronize")  # remembered across later events
    assert check(gh, sha)[1] == "success"

    gh.update_pull(7, labels=())
    deliver(gh, "pull_request", "unlabeled", sender="chair", label={"name": "risk: R0"})
    assert check(gh, sha)[:2] == ("in_progress", None)


def test_unreadable_team_never_counts_as_everyone(gh):
    sha = open_pull(gh, {"deploy/prod.yml": "x"})
    gh.fail_team_lookup("octo-org", "release")
    gh.add_review(7, "rita")
    deliver(gh, "pull_request_review", "submitted", sender="rita")
    assert check(gh, sha)[:2] == ("in_progress", None)
    assert "Could not read the team(s) octo-org/release" in report(gh)


def test_certification_seam_can_require_a_level(gh):
    sha = open_pull(gh, {"deploy/prod.yml": "x"})
    gh.add_review(7, "rita")
    installed = routing_handler.level_check()
    routing_handler.set_level_check(lambda config, port: lambda login, level: login != "rita")
    try:
        deliver(gh, "pull_request_review", "submitted", sender="rita")
    finally:
        routing_handler.set_level_check(installed)
    assert check(gh, sha)[:2] == ("in_progress", None)
    assert "rita (lacks the certification level for R2)" in report(gh)


def test_records_go_to_registered_sinks(gh):
    open_pull(gh, {"docs/a.md": "x"})
    seen: list[dict[str, Any]] = []
    routing_handler.add_record_sink(seen.append)
    try:
        deliver(gh, "pull_request", "opened")
    finally:
        routing_handler.remove_record_sink(seen.append)
    assert [(r["kind"], r["skill"]) for r in seen] == [("decision", "docs")]
    assert seen[0]["timestamp"].endswith("Z")


def test_closed_pull_is_left_alone(gh):
    gh.add_pull(7, files={"docs/a.md": "x"}, state="closed")
    deliver(gh, "pull_request", "reopened")
    assert gh.check_runs == {}


def test_health_source_ranks_erring_agents_last(gh):
    sha = open_pull(gh, {"deploy/prod.yml": "x"})
    installed = routing_handler.health_source()
    routing_handler.set_health_source(lambda config: {"executor-1": 0.5, "ghost": 1.0})
    try:
        event = deliver(gh, "pull_request", "opened")
    finally:
        routing_handler.set_health_source(installed)
    assert json.loads(event.outputs["routing-record"])["agent"] == "executor-2"
    assert "Ranked last for an error rate above 20%: executor-1" in report(gh)
    assert check(gh, sha)[:2] == ("in_progress", None)


def test_empty_approver_role_is_explained(gh):
    config = CONFIG.replace("    approval_manager: {users: [manny], teams: [octo-org/release]}\n",
                            "    other: {users: [x]}\n")
    open_pull(gh, {"deploy/prod.yml": "x"})
    deliver(gh, "pull_request", "opened", config=config)
    assert "nobody is in this role yet" in report(gh)


def test_authors_cannot_approve_their_own_risk(gh):
    sha = gh.add_pull(7, files={".github/workflows/ci.yml": "x"}, author="chair").head_sha
    deliver(gh, "pull_request", "opened", sender="chair")
    comment = gh.add_comment(7, "chair", "/approve-risk mine")
    deliver(gh, "issue_comment", "created", sender="chair",
            comment={"id": comment.id, "body": comment.body})
    assert check(gh, sha)[:2] == ("in_progress", None)  # still waiting
    assert any("cannot approve its own risk" in c.body for c in gh.bot_comments(7))


def test_each_skills_approver_role_must_approve(gh):
    config = CONFIG.replace(
        "  roles:\n",
        "    - {id: db, risk_level: R2, paths: [migrations/], approver: dba}\n  roles:\n"
        "    dba: {users: [dana]}\n")
    sha = open_pull(gh, {"deploy/prod.yml": "x", "migrations/001.sql": "y"})
    gh.add_review(7, "manny")
    deliver(gh, "pull_request_review", "submitted", sender="manny", config=config)
    assert check(gh, sha) == ("in_progress", None, "R2: waiting for approval by dba")
    gh.add_review(7, "dana", "CHANGES_REQUESTED")
    deliver(gh, "pull_request_review", "submitted", sender="dana", config=config)
    assert "dana (requested changes)" in report(gh)
    gh.add_review(7, "dana")
    deliver(gh, "pull_request_review", "submitted", sender="dana", config=config)
    assert check(gh, sha) == ("completed", "success", "R2: approved by dana, manny")
    assert "cvf:routing" not in gh.check_run(CHECK, sha).output.text


def test_a_certification_check_that_fails_counts_nobody_and_says_why(gh):
    from bot.errors import CvfError

    def broken(config, port):
        def holds(login, level):
            raise CvfError("certification registry certification/registry.yml is not valid")
        return holds

    sha = open_pull(gh, {".github/workflows/ci.yml": "x"})
    comment = gh.add_comment(7, "boris", "/approve-risk ok")
    installed = routing_handler.level_check()
    routing_handler.set_level_check(broken)
    try:
        deliver(gh, "pull_request", "opened")
        deliver(gh, "issue_comment", "created", sender="boris",
                comment={"id": comment.id, "body": comment.body})
    finally:
        routing_handler.set_level_check(installed)
    assert check(gh, sha)[:2] == ("in_progress", None)  # still waiting
    assert any("@boris: certification could not be checked" in c.body
               for c in gh.bot_comments(7))


def test_a_huge_pull_request_keeps_the_report_within_githubs_limits(gh):
    skills = "".join(f"    - {{id: s{i:03d}, risk_level: R1, paths: ['area{i:03d}/']}}\n"
                     for i in range(300))
    config = CONFIG.replace("  roles:\n", skills + "  roles:\n")
    files = {f"area{i:03d}/f.py": "x" for i in range(300)}
    files.update({f"loose/{i}.txt": "y" for i in range(500)})
    sha = open_pull(gh, files)
    deliver(gh, "pull_request", "opened", config=config)
    body = report(gh)
    assert len(body) < 65_536
    assert "… and 240 more skills" in body and "… and 450 more" in body
    assert check(gh, sha)[2] == "R1: 500 path(s) outside the skills' scope"


def test_approve_risk_quoted_or_in_code_is_not_a_command(gh):
    sha = open_pull(gh, {".github/workflows/ci.yml": "x"})
    deliver(gh, "pull_request", "opened")
    body = "> /approve-risk from the other PR\n\n```\n/approve-risk\n```\nnot yet"
    quoted = gh.add_comment(7, "boris", body)
    writes = len(gh.writes())
    deliver(gh, "issue_comment", "created", sender="boris",
            comment={"id": quoted.id, "body": body})
    assert check(gh, sha)[:2] == ("in_progress", None)  # still waiting
    assert len(gh.writes()) == writes


def test_waiting_r2_and_r3_request_reviews_from_the_approver_roles_members(gh):
    open_pull(gh, {"deploy/prod.yml": "x"})
    deliver(gh, "pull_request", "opened")
    pull = gh.get_pull(7)
    # The role's users and teams, not a generic mention and never the author.
    assert (pull.requested_reviewers, pull.requested_teams) == (("manny",), ("release",))
    writes = len(gh.writes())
    deliver(gh, "pull_request", "opened")  # redelivered: asked already, nothing new
    assert len(gh.writes()) == writes
    assert "**Approvers needed:** approval\\_manager (manny, octo-org/release)" in report(gh)

    gh.add_pull(8, files={".github/workflows/ci.yml": "x"}, author="author")
    deliver(gh, "pull_request", "opened", number=8)
    committee = gh.get_pull(8).requested_reviewers
    assert committee and "author" not in committee
