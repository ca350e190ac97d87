"""The fake and the real adapter agree: same answers, same writes, same request counts.

Each scenario runs twice: against ``FakeGitHub`` and against ``PyGithubAdapter`` talking
to the simulator over HTTP. Handler tests use the fake; this keeps the fake honest, so a
handler that passes on the fake does the same on GitHub.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from typing import Any

import pytest

from bot.github.adapter import PyGithubAdapter
from bot.github.port import CheckRunOutput, GitHubError, GitHubPort, TeamLookupError
from tests.fake_github import FakeGitHub
from tests.ghsim import GitHubSimulator

REPO = "octo-org/governance"
MARKER = "<!-- cvf:rfc-status -->"


class Side:
    """One way to run a scenario: a port plus the seeding calls both worlds understand."""

    def __init__(self, port: GitHubPort, seed: Any, teams: Any, name: str) -> None:
        self.port = port
        self.seed = seed  # has put_file, add_pull, add_issue, add_comment, add_reaction, ...
        self.teams = teams  # has set_team
        self.name = name


@pytest.fixture
def fake_side() -> Side:
    fake = FakeGitHub(REPO)
    return Side(fake, fake, fake, "fake")


@pytest.fixture
def adapter_side(ghsim: GitHubSimulator) -> Iterator[Side]:
    repo = ghsim.repo(REPO)
    adapter = PyGithubAdapter(REPO, token="t", api_url=ghsim.base_url,
                              seconds_between_writes=None, sleeper=lambda _: None)
    yield Side(adapter, repo, ghsim, "adapter")
    assert ghsim.errors == []


def normal(value: Any) -> Any:
    """Results without what legitimately differs between the worlds (ids, times, URLs)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()
                if k not in ("id", "created_at", "updated_at", "submitted_at", "html_url",
                             "head_sha", "sha", "commit_id")}
    if isinstance(value, list | tuple):
        return [normal(v) for v in value]
    return value


def writes(port: GitHubPort) -> list[tuple[str, str, Any]]:
    """The write log with ids in paths and shas in bodies replaced (they differ by world)."""
    return [(w.method, re.sub(r"/\d{3,}(?=/|$)", "/ID", w.path),
             json.loads(re.sub(r"\b[0-9a-f]{40}\b", "SHA", json.dumps(w.body))))
            for w in port.stats.write_log]


def run(side: Side, scenario: Callable[[Side], Any]) -> tuple[Any, list[Any], int]:
    result = scenario(side)
    return normal(result), writes(side.port), side.port.stats.requests


def pull_facts(s: Side) -> Any:
    s.seed.put_file("README.md", "hello\n")
    pr = s.seed.add_pull(title="RFC: widgets", body="b", author="alice",
                         files={"rfcs/0001-widgets.md": "# W\n", "README.md": "hi\n"},
                         labels=["rfc"])
    for i in range(3):
        s.seed.add_comment(pr.number, f"user{i}", f"comment {i}")
    s.seed.add_reaction("alice", "+1", number=pr.number)
    s.seed.add_reaction("bob", "hooray", number=pr.number)
    pull = s.port.get_pull(pr.number)
    head = s.port.get_file("README.md", ref=pull.head_sha)
    return [pull, s.port.list_pull_files(pr.number), head and head.text,
            s.port.get_file("missing.md"), s.port.list_issue_comments(pr.number),
            s.port.list_issue_reactions(pr.number), s.port.default_branch()]


def sticky_twice(s: Side) -> Any:
    pr = s.seed.add_pull(author="alice")
    s.seed.add_comment(pr.number, "mallory", f"{MARKER}\nfake: accepted")
    first = s.port.upsert_sticky_comment(pr.number, MARKER, "votes: 1")
    same = s.port.upsert_sticky_comment(pr.number, MARKER, "votes: 1")
    edited = s.port.upsert_sticky_comment(pr.number, MARKER, f"{MARKER}\nvotes: 2")
    return [first.body, same.body, edited.body, first.author_is_bot]


def labels_and_reactions(s: Side) -> Any:
    pr = s.seed.add_pull(labels=["rfc"])
    comment = s.seed.add_comment(pr.number, "carol", "/rfc approve")
    s.port.add_labels(pr.number, ["rfc:fcp"])
    s.port.add_labels(pr.number, [])
    s.port.remove_label(pr.number, "rfc")
    s.port.remove_label(pr.number, "never-there")
    s.port.add_comment_reaction(comment.id, "eyes")
    return [s.port.get_pull(pr.number).labels, s.port.search_open_pulls("rfc:fcp"),
            [(r.user, r.content) for r in s.port.list_comment_reactions(comment.id)]]


def check_runs(s: Side) -> Any:
    pr = s.seed.add_pull()
    sha = s.port.get_pull(pr.number).head_sha
    out = CheckRunOutput(title="Routing", summary="R2",
                         annotations=tuple({"path": "a", "start_line": i, "end_line": i,
                                            "annotation_level": "notice", "message": "m"}
                                           for i in range(60)))
    first = s.port.set_check_run(sha, "cvf/routing", status="in_progress", conclusion=None,
                                 output=CheckRunOutput("Routing", "checking"))
    second = s.port.set_check_run(sha, "cvf/routing", status="completed",
                                  conclusion="success", output=out)
    return first == second


def update_file(s: Side) -> Any:
    s.seed.put_file("rfcs/index.md", "a\n")
    made = s.port.update_file("rfcs/index.md", "main", lambda old: (old or "") + "b\n", "add")
    unchanged = s.port.update_file("rfcs/index.md", "main", lambda old: old, "noop")
    created = s.port.update_file("rfcs/new.md", "main", lambda old: "new\n", "create")
    text = s.port.get_file("rfcs/index.md")
    return [bool(made), unchanged, bool(created), text and text.text]


def update_file_conflict(s: Side) -> Any:
    s.seed.put_file("votes.md", "alice\n")
    s.seed.concurrent_edit("votes.md", lambda old: (old or "") + "carol\n")
    seen: list[str | None] = []

    def add_bob(old: str | None) -> str:
        seen.append(old)
        return (old or "") + "bob\n"

    s.port.update_file("votes.md", "main", add_bob, "vote: bob")
    after = s.port.get_file("votes.md")
    s.seed.concurrent_edit("votes.md", lambda old: (old or "") + "x\n", times=10)
    with pytest.raises(GitHubError) as info:
        s.port.update_file("votes.md", "main", lambda old: (old or "") + "me\n", "m")
    return [seen, after and after.text, info.value.status]


def teams_and_permissions(s: Side) -> Any:
    s.teams.set_team("octo-org", "committee", ["alice", "bob"], pending=["carol"])
    s.seed.set_permission("dave", "maintain")
    s.seed.set_permission("erin", "triage")
    answers = [s.port.team_members("octo-org", "committee"),
               s.port.is_team_member("octo-org", "committee", "alice"),
               s.port.is_team_member("octo-org", "committee", "carol"),
               s.port.is_team_member("octo-org", "committee", "zed"),
               s.port.collaborator_permission("dave"),
               s.port.collaborator_permission("erin"),
               s.port.collaborator_permission("stranger")]
    with pytest.raises(TeamLookupError):
        s.port.team_members("octo-org", "no-such-team")
    with pytest.raises(TeamLookupError):
        s.port.is_team_member("octo-org", "no-such-team", "alice")
    return answers


def tracking_issue(s: Side) -> Any:
    marker = "<!-- cvf:metrics-alert -->"
    s.seed.add_issue(title="spoof", body=f"{marker} by a user", author="mallory")
    opened = s.port.open_or_update_issue(marker, "Alert", "lead time up", labels=["metrics"])
    again = s.port.open_or_update_issue(marker, "Alert", "lead time up", labels=["metrics"])
    changed = s.port.open_or_update_issue(marker, "Alert", "worse", labels=["metrics", "p1"])
    s.port.close_issue(opened.number, "resolved")
    s.port.close_issue(opened.number, "resolved")
    return [opened.number == again.number == changed.number, changed.body, changed.labels,
            s.port.find_issue(marker)]


SCENARIOS = [pull_facts, sticky_twice, labels_and_reactions, check_runs, update_file,
             update_file_conflict, teams_and_permissions, tracking_issue]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_fake_and_adapter_agree(fake_side: Side, adapter_side: Side,
                                scenario: Callable[[Side], Any]) -> None:
    fake_result, fake_writes, _ = run(fake_side, scenario)
    real_result, real_writes, _ = run(adapter_side, scenario)
    assert fake_result == real_result
    assert fake_writes == real_writes


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_fake_counts_requests_like_the_adapter(fake_side: Side, adapter_side: Side,
                                               scenario: Callable[[Side], Any]) -> None:
    assert run(fake_side, scenario)[2] == run(adapter_side, scenario)[2]


@pytest.mark.parametrize("side_name", ["fake_side", "adapter_side"])
def test_missing_pull_is_a_404_on_both(side_name: str, request: pytest.FixtureRequest) -> None:
    side: Side = request.getfixturevalue(side_name)
    with pytest.raises(GitHubError) as info:
        side.port.get_pull(404)
    assert info.value.status == 404
