"""Issue 15: within one delivery the adapter reads each fact once, shares it between the
concerns' handlers, and writes only what differs from what GitHub already shows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.github.adapter import PyGithubAdapter
from bot.github.port import CheckRunOutput
from tests.ghsim import GitHubSimulator

REPO = "octo-org/governance"
BOT = "cvf-governance[bot]"
PATH = "rfcs/0001-x.md"


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    with GitHubSimulator() as started:
        started.set_token("t", BOT)
        started.repo(REPO).add_pull(1, files={PATH: "---\nstatus: draft\n---\n"},
                                    head_ref="rfc-1")
        yield started
        assert started.errors == []


def _adapter(sim: GitHubSimulator) -> PyGithubAdapter:
    return PyGithubAdapter(REPO, token="t", api_url=sim.base_url, bot_login=BOT,
                           seconds_between_writes=None, sleeper=lambda _: None)


def _calls(sim: GitHubSimulator) -> list[str]:
    return [f"{r.method} {r.path.removeprefix('/repos/' + REPO)}" for r in sim.requests]


def test_comments_are_read_once_until_the_bot_writes_one(sim: GitHubSimulator) -> None:
    gh = _adapter(sim)
    gh.list_issue_comments(1)
    gh.list_issue_comments(1)
    gh.upsert_sticky_comment(1, "<!-- m -->", "hello")  # knows there is none: creates
    gh.list_issue_comments(1)  # read again after the write (others may have written)
    assert _calls(sim) == ["GET /issues/1/comments", "POST /issues/1/comments",
                           "GET /issues/1/comments"]


def test_one_check_run_listing_serves_every_check_and_unchanged_runs_are_left(
        sim: GitHubSimulator) -> None:
    gh = _adapter(sim)
    sha = gh.get_pull(1).head_sha
    done = CheckRunOutput(title="ok", summary="fine")
    gh.set_check_run(sha, "cvf/routing", status="completed", conclusion="success", output=done)
    gh.set_check_run(sha, "cvf/rfc", status="completed", conclusion="success", output=done)
    assert sim.count("GET", "/check-runs") == 1 and len(sim.writes()) == 2
    again = _adapter(sim)  # the next delivery: GitHub already shows exactly this
    again.set_check_run(sha, "cvf/rfc", status="completed", conclusion="success", output=done)
    assert len(sim.writes()) == 2
    again.set_check_run(sha, "cvf/rfc", status="completed", conclusion="failure", output=done)
    assert sim.writes()[-1].method == "PATCH"
    assert [r.conclusion for r in sim.repo(REPO).check_runs_for(sha, "cvf/rfc")] == ["failure"]


def test_no_check_run_lookup_on_the_bots_own_commit(sim: GitHubSimulator) -> None:
    gh = _adapter(sim)
    gh.get_pull(1)
    commit = gh.update_file(PATH, "rfc-1", lambda old: (old or "") + "more\n", "front matter")
    assert commit
    gh.set_check_run(commit, "cvf/rfc", status="completed", conclusion="success",
                     output=CheckRunOutput(title="ok", summary="fine"))
    assert sim.count("GET", "/check-runs") == 0
    assert sim.repo(REPO).check_runs_for(commit, "cvf/rfc")


def test_the_rfc_file_on_the_head_branch_is_the_one_read_at_the_head(
        sim: GitHubSimulator) -> None:
    gh = _adapter(sim)
    pull = gh.get_pull(1)
    gh.get_file(PATH, ref=pull.head_sha)
    assert gh.update_file(PATH, "rfc-1", lambda old: old, "nothing to change") is None
    assert sim.count("GET", "/contents/") == 1


def test_a_comment_listed_without_reactions_is_not_asked_for_them(
        sim: GitHubSimulator) -> None:
    repo = sim.repo(REPO)
    quiet = repo.add_comment(1, "bob", "/vote approve")
    liked = repo.add_comment(1, "carol", "/vote approve")
    repo.add_reaction(BOT, "+1", comment_id=liked.id)
    gh = _adapter(sim)
    gh.list_issue_comments(1)
    assert gh.list_comment_reactions(quiet.id) == []
    assert [r.content for r in gh.list_comment_reactions(liked.id)] == ["+1"]
    assert sim.count("GET", r"/issues/comments/\d+/reactions") == 1
    gh.add_comment_reaction(quiet.id, "+1")
    assert [r.content for r in gh.list_comment_reactions(quiet.id)] == ["+1"]
