"""The in-memory GitHub behaves like GitHub where handlers could be fooled."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from bot.github.port import (
    ChangedFile,
    CheckRunOutput,
    GitHubError,
    GitHubPort,
    TeamLookupError,
)
from tests.conftest import load_payload
from tests.fake_github import FakeGitHub, blob_sha

MARKER = "<!-- cvf:rfc-status -->"


def test_fake_implements_every_port_method():
    port_methods = {name for name in vars(GitHubPort)
                    if not name.startswith("_") and callable(getattr(GitHubPort, name))}
    missing = {name for name in port_methods if not callable(getattr(FakeGitHub, name, None))}
    assert port_methods and not missing
    port: GitHubPort = FakeGitHub()  # the type checker holds the signatures
    assert port.repo == "octo-org/governance"


def test_blob_sha_matches_git():
    # `printf 'hello\n' | git hash-object --stdin`
    assert blob_sha("hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_pull_files_and_contents_follow_the_seeded_change(fake_github: FakeGitHub):
    fake_github.put_file("README.md", "old\n")
    fake_github.put_file("gone.txt", "x")
    pr = fake_github.add_pull(title="RFC: widgets", author="alice",
                              files={"rfcs/0001-widgets.md": "# Widgets\n",
                                     "README.md": "new\n", "gone.txt": None},
                              labels=["rfc"])
    assert fake_github.get_pull(pr.number).labels == ("rfc",)
    assert fake_github.list_pull_files(pr.number) == [
        ChangedFile("rfcs/0001-widgets.md", "added"), ChangedFile("README.md", "modified"),
        ChangedFile("gone.txt", "removed")]
    at_head = fake_github.get_file("README.md", ref=pr.head_sha)
    assert at_head is not None and at_head.text == "new\n" and at_head.sha == blob_sha("new\n")
    main = fake_github.get_file("README.md")
    assert main is not None and main.text == "old\n"
    assert fake_github.get_file("gone.txt", ref=pr.head_ref) is None
    assert fake_github.get_file("nope.md") is None


def test_unknown_pull_is_a_404(fake_github: FakeGitHub):
    with pytest.raises(GitHubError) as info:
        fake_github.get_pull(99)
    assert info.value.status == 404


def test_sticky_comment_created_once_edited_in_place_and_skipped_when_unchanged(
        fake_github: FakeGitHub):
    pr = fake_github.add_pull()
    first = fake_github.upsert_sticky_comment(pr.number, MARKER, f"{MARKER}\nvotes: 1")
    writes_after_create = fake_github.stats.writes
    same = fake_github.upsert_sticky_comment(pr.number, MARKER, f"{MARKER}\nvotes: 1")
    assert same.id == first.id and fake_github.stats.writes == writes_after_create
    edited = fake_github.upsert_sticky_comment(pr.number, MARKER, f"{MARKER}\nvotes: 2")
    assert edited.id == first.id and edited.body.endswith("votes: 2")
    assert [c.body for c in fake_github.bot_comments(pr.number)] == [f"{MARKER}\nvotes: 2"]
    assert [(w.method, w.path) for w in fake_github.stats.write_log] == [
        ("POST", f"/repos/octo-org/governance/issues/{pr.number}/comments"),
        ("PATCH", f"/repos/octo-org/governance/issues/comments/{first.id}")]


def test_a_user_quoting_the_marker_is_not_taken_for_the_bot(fake_github: FakeGitHub):
    pr = fake_github.add_pull()
    spoof = fake_github.add_comment(pr.number, "mallory", f"{MARKER}\nRFC accepted!")
    ours = fake_github.upsert_sticky_comment(pr.number, MARKER, f"{MARKER}\nstill open")
    assert ours.id != spoof.id and ours.author_is_bot
    assert fake_github.comments[spoof.id].body.endswith("RFC accepted!")


def test_sticky_body_without_marker_gets_it_so_the_next_call_finds_it(fake_github: FakeGitHub):
    pr = fake_github.add_pull()
    first = fake_github.upsert_sticky_comment(pr.number, MARKER, "status")
    again = fake_github.upsert_sticky_comment(pr.number, MARKER, "status")
    assert first.id == again.id and first.body.startswith(MARKER)
    assert fake_github.stats.writes == 1


def test_comment_over_githubs_limit_is_cut_with_a_note(fake_github: FakeGitHub):
    pr = fake_github.add_pull()
    comment = fake_github.create_comment(pr.number, "x" * 70_000)
    assert len(comment.body) == 65_536 and "cut" in comment.body[-80:]


def test_reactions_one_per_user_and_content_and_bot_reactions(fake_github: FakeGitHub):
    pr = fake_github.add_pull()
    fake_github.add_reaction("alice", "+1", number=pr.number)
    fake_github.add_reaction("alice", "+1", number=pr.number)
    fake_github.add_reaction("alice", "-1", number=pr.number)
    assert [(r.user, r.content) for r in fake_github.list_issue_reactions(pr.number)] == [
        ("alice", "+1"), ("alice", "-1")]
    comment = fake_github.add_comment(pr.number, "bob", "/rfc approve")
    fake_github.add_comment_reaction(comment.id, "eyes")
    fake_github.add_comment_reaction(comment.id, "eyes")
    assert [(r.user, r.content) for r in fake_github.list_comment_reactions(comment.id)] == [
        ("cvf-governance[bot]", "eyes")]
    with pytest.raises(GitHubError):
        fake_github.add_comment_reaction(comment.id, "thumbsup")


def test_labels_add_remove_and_search(fake_github: FakeGitHub):
    a = fake_github.add_pull(labels=["rfc"])
    b = fake_github.add_pull()
    closed = fake_github.add_pull(labels=["rfc"], state="closed")
    fake_github.add_labels(b.number, ["rfc", "rfc:fcp"])
    fake_github.add_labels(b.number, ["rfc"])
    assert fake_github.labels_on(b.number) == ["rfc", "rfc:fcp"]
    assert fake_github.search_open_pulls("rfc") == [a.number, b.number]
    fake_github.remove_label(b.number, "rfc:fcp")
    fake_github.remove_label(b.number, "not-there")
    assert fake_github.get_pull(b.number).labels == ("rfc",)
    assert closed.number not in fake_github.search_open_pulls("rfc")


def test_check_run_created_then_updated_on_the_same_sha(fake_github: FakeGitHub):
    pr = fake_github.add_pull()
    out = CheckRunOutput(title="Routing", summary="R2: needs 2 reviews")
    first = fake_github.set_check_run(pr.head_sha, "cvf/routing", status="in_progress",
                                      conclusion=None, output=out)
    second = fake_github.set_check_run(pr.head_sha, "cvf/routing", status="completed",
                                       conclusion="success", output=out)
    run = fake_github.check_run("cvf/routing", pr.head_sha)
    assert first == second and run is not None
    assert run.history == [("in_progress", None), ("completed", "success")]
    with pytest.raises(GitHubError):
        fake_github.set_check_run(pr.head_sha, "x", status="completed", conclusion=None,
                                  output=out)
    many = CheckRunOutput("t", "s", annotations=tuple({"line": i} for i in range(120)))
    before = len(fake_github.stats.write_log)
    run_id = fake_github.set_check_run(pr.head_sha, "lint", status="completed",
                                       conclusion="failure", output=many)
    batches = fake_github.stats.write_log[before:]
    assert [(w.method, len(w.body["output"]["annotations"])) for w in batches] == [  # type: ignore[index]
        ("POST", 50), ("PATCH", 50), ("PATCH", 20)]
    assert batches[1].path.endswith(f"/check-runs/{run_id}")


def test_update_file_passes_old_text_and_skips_unchanged(fake_github: FakeGitHub):
    fake_github.put_file("rfcs/index.md", "a\n")
    seen: list[str | None] = []

    def append_b(old: str | None) -> str:
        seen.append(old)
        return (old or "") + "b\n"

    sha = fake_github.update_file("rfcs/index.md", "main", append_b, "index: add b")
    assert sha and seen == ["a\n"] and fake_github.file_text("rfcs/index.md") == "a\nb\n"
    assert fake_github.writes("PUT")[0].body == {
        "message": "index: add b", "branch": "main",
        "content": base64.b64encode(b"a\nb\n").decode(), "sha": blob_sha("a\n")}
    assert fake_github.update_file("rfcs/index.md", "main", lambda old: old, "noop") is None
    assert fake_github.update_file("new.md", "main", lambda old: None, "noop") is None
    assert fake_github.update_file("new.md", "main", lambda old: "hi", "create")
    assert "sha" not in fake_github.writes("PUT", "new.md")[0].body  # type: ignore[operator]


def test_update_file_rereads_after_a_concurrent_change(fake_github: FakeGitHub):
    fake_github.put_file("votes.md", "alice\n")
    fake_github.concurrent_edit("votes.md", lambda old: (old or "") + "carol\n")
    seen: list[str | None] = []

    def add_bob(old: str | None) -> str:
        seen.append(old)
        return (old or "") + "bob\n"

    fake_github.update_file("votes.md", "main", add_bob, "vote: bob")
    assert seen == ["alice\n", "alice\ncarol\n"]
    assert fake_github.file_text("votes.md") == "alice\ncarol\nbob\n"  # carol's vote kept
    assert len(fake_github.writes("PUT")) == 2


def test_update_file_gives_up_with_a_409_after_repeated_conflicts(fake_github: FakeGitHub):
    fake_github.put_file("votes.md", "")
    fake_github.concurrent_edit("votes.md", lambda old: (old or "") + "x", times=10)
    with pytest.raises(GitHubError) as info:
        fake_github.update_file("votes.md", "main", lambda old: (old or "") + "me", "m")
    assert info.value.status == 409 and "try again" in str(info.value)
    assert len(fake_github.writes("PUT")) == 4
    assert "me" not in (fake_github.file_text("votes.md") or "")


def test_team_membership_and_lookup_failure(fake_github: FakeGitHub):
    fake_github.set_team("octo-org", "rfc-committee", ["Alice", "bob"], pending=["carol"])
    assert fake_github.team_members("octo-org", "rfc-committee") == ["Alice", "bob"]
    assert fake_github.is_team_member("octo-org", "RFC-Committee", "alice")
    assert not fake_github.is_team_member("octo-org", "rfc-committee", "carol")
    with pytest.raises(TeamLookupError) as missing:
        fake_github.team_members("octo-org", "nobody")
    assert missing.value.status == 404
    fake_github.fail_team_lookup("octo-org", "rfc-committee", times=1)
    with pytest.raises(TeamLookupError) as denied:
        fake_github.is_team_member("octo-org", "rfc-committee", "alice")
    assert denied.value.status == 403 and "members:read" in str(denied.value)
    assert fake_github.is_team_member("octo-org", "rfc-committee", "alice")


def test_collaborator_permission_in_githubs_legacy_form(fake_github: FakeGitHub):
    fake_github.set_permission("alice", "maintain")
    fake_github.set_permission("tom", "triage")
    assert fake_github.collaborator_permission("Alice") == "write"
    assert fake_github.collaborator_permission("tom") == "read"
    assert fake_github.collaborator_permission("stranger") == "none"
    with pytest.raises(ValueError):
        fake_github.set_permission("bob", "owner")


def test_open_or_update_issue_is_idempotent_and_ignores_user_issues(fake_github: FakeGitHub):
    marker = "<!-- cvf:metrics-alert -->"
    fake_github.add_issue(title="fake alert", body=f"{marker} from a user", author="mallory")
    issue = fake_github.open_or_update_issue(marker, "Metrics alert", f"{marker}\nlead time",
                                             labels=["metrics"])
    assert issue.author == "cvf-governance[bot]" and issue.labels == ("metrics",)
    writes = fake_github.stats.writes
    again = fake_github.open_or_update_issue(marker, "Metrics alert", f"{marker}\nlead time",
                                             labels=["metrics"])
    assert again.number == issue.number and fake_github.stats.writes == writes
    changed = fake_github.open_or_update_issue(marker, "Metrics alert", f"{marker}\nworse")
    assert changed.number == issue.number and changed.body.endswith("worse")
    fake_github.close_issue(issue.number, comment="resolved")
    fake_github.close_issue(issue.number, comment="resolved")
    assert len(fake_github.comments_on(issue.number)) == 1
    assert fake_github.find_issue(marker) is None  # closed by a person: left alone
    reopened = fake_github.open_or_update_issue(marker, "Metrics alert", f"{marker}\nagain")
    assert reopened.number != issue.number and reopened.state == "open"


def test_workflow_runs_since(fake_github: FakeGitHub):
    old = fake_github.add_workflow_run(created_at=datetime(2024, 1, 1, tzinfo=UTC))
    new = fake_github.add_workflow_run(created_at=datetime(2024, 3, 1, tzinfo=UTC),
                                       conclusion="failure")
    assert [r.id for r in fake_github.list_workflow_runs()] == [new.id, old.id]
    since = fake_github.list_workflow_runs(since=datetime(2024, 2, 1, tzinfo=UTC))
    assert [r.id for r in since] == [new.id]


def test_injected_failure_and_call_counts(fake_github: FakeGitHub):
    pr = fake_github.add_pull()
    for i in range(150):
        fake_github.add_comment(pr.number, f"user{i}", "hi")
    before = fake_github.stats.requests
    assert len(fake_github.list_issue_comments(pr.number)) == 150
    assert fake_github.stats.requests - before == 2  # two pages of 100
    fake_github.fail("create_comment")
    with pytest.raises(GitHubError) as info:
        fake_github.create_comment(pr.number, "hello")
    assert info.value.status == 502
    fake_github.create_comment(pr.number, "hello")
    assert fake_github.stats.writes == 1
    with pytest.raises(AttributeError):
        fake_github.fail("no_such_method")


def test_payload_fixture_gives_real_mutable_copies(payload):
    first = payload("pull_request", "opened")
    assert first["action"] == "opened" and first["pull_request"]["number"] > 0
    first["action"] = "changed"
    assert payload("pull_request", "opened")["action"] == "opened"
    with pytest.raises(FileNotFoundError, match="copy it from"):
        load_payload("pull_request", "nonexistent")
