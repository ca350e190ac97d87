"""What handlers may ask of GitHub and hand to it: plain facts in, actions out.

Handlers and the core see only these dataclasses and the ``GitHubPort`` protocol, never
PyGithub objects, so the same handler runs against the real API (``bot.github.adapter``),
a dry run, or an in-memory fake in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    body: str
    author: str
    state: str  # "open" | "closed"
    merged: bool
    draft: bool
    head_sha: str
    head_ref: str
    head_repo: str  # "owner/name" of the branch's repository
    base_ref: str
    base_repo: str
    labels: tuple[str, ...] = ()
    created_at: datetime | None = None
    html_url: str = ""
    maintainer_can_modify: bool = False
    requested_reviewers: tuple[str, ...] = ()  # logins whose review is requested
    requested_teams: tuple[str, ...] = ()  # team slugs whose review is requested

    @property
    def is_fork(self) -> bool:
        return self.head_repo.lower() != self.base_repo.lower()


@dataclass(frozen=True)
class ChangedFile:
    filename: str
    status: str  # added | modified | removed | renamed | copied | changed | unchanged
    previous_filename: str | None = None


@dataclass(frozen=True)
class Comment:
    id: int
    author: str
    body: str
    created_at: datetime
    updated_at: datetime
    author_is_bot: bool = False
    html_url: str = ""


@dataclass(frozen=True)
class Reaction:
    id: int
    user: str
    content: str  # "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"
    created_at: datetime | None = None


@dataclass(frozen=True)
class Review:
    id: int
    author: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id: str
    submitted_at: datetime | None = None


@dataclass(frozen=True)
class ReviewComment:
    id: int
    author: str
    body: str
    path: str
    in_reply_to_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class FileContent:
    path: str
    text: str
    sha: str  # blob sha, needed to update the file without losing a concurrent change


@dataclass(frozen=True)
class CheckRunOutput:
    title: str
    summary: str
    text: str = ""
    annotations: tuple[dict[str, object], ...] = ()


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    state: str
    labels: tuple[str, ...] = ()
    author: str = ""


@dataclass(frozen=True)
class WorkflowRun:
    id: int
    name: str
    conclusion: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    head_sha: str = ""
    event: str = ""
    actor: str = ""
    url: str = ""  # the run's page


@dataclass
class WriteRecord:
    """One write the adapter made (or, in a dry run, would have made)."""

    method: str
    path: str
    body: object = None


@dataclass
class CallStats:
    """API calls made through the adapter, so tests and benchmarks can report calls/event.

    ``requests`` counts every request sent; ``points`` the rate-limit points they cost
    (all but the ones GitHub answered 304 to a conditional request, counted in
    ``not_modified``); ``rate_remaining`` is the last ``X-RateLimit-Remaining`` seen.
    """

    requests: int = 0
    writes: int = 0
    retries: int = 0
    points: int = 0
    not_modified: int = 0
    rate_remaining: int | None = None
    write_log: list[WriteRecord] = field(default_factory=list)


class GitHubError(Exception):
    """A GitHub failure the adapter could not retry away; the message says what to do."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class TeamLookupError(GitHubError):
    """A team's membership could not be read; never silently treated as "everyone"."""


class PermissionDenied(GitHubError):
    """403 on a write: the token lacks a permission (the message names it)."""


class GitHubPort(Protocol):
    """The facts and actions handlers need; one repository per instance."""

    repo: str  # "owner/name"
    stats: CallStats

    # -- facts ----------------------------------------------------------------------
    def get_pull(self, number: int) -> PullRequest: ...
    def list_pull_files(self, number: int) -> list[ChangedFile]: ...
    def get_file(self, path: str, ref: str | None = None) -> FileContent | None: ...
    def list_issue_comments(self, number: int) -> list[Comment]: ...
    def list_review_comments(self, number: int) -> list[ReviewComment]: ...
    def list_reviews(self, number: int) -> list[Review]: ...
    def list_issue_reactions(self, number: int) -> list[Reaction]: ...
    def list_comment_reactions(self, comment_id: int) -> list[Reaction]: ...
    def team_members(self, org: str, team_slug: str) -> list[str]: ...
    def is_team_member(self, org: str, team_slug: str, login: str) -> bool: ...
    def collaborator_permission(self, login: str) -> str: ...
    def search_open_pulls(self, label: str) -> list[int]: ...
    def find_issue(self, marker: str) -> Issue | None: ...
    def list_workflow_runs(self, since: datetime | None = None) -> list[WorkflowRun]: ...
    def list_updated_open(self, since: datetime) -> list[tuple[int, bool]]:
        """Open issues and pull requests updated since ``since``: ``(number, is_pull)``."""
        ...
    def default_branch(self) -> str: ...

    # -- actions --------------------------------------------------------------------
    def create_comment(self, number: int, body: str) -> Comment: ...
    def upsert_sticky_comment(self, number: int, marker: str, body: str) -> Comment: ...
    def add_comment_reaction(self, comment_id: int, content: str) -> None: ...
    def add_labels(self, number: int, labels: Sequence[str]) -> None: ...
    def request_reviewers(self, number: int, users: Sequence[str],
                          teams: Sequence[str]) -> None: ...
    def remove_label(self, number: int, label: str) -> None: ...
    def set_check_run(self, head_sha: str, name: str, *, status: str,
                      conclusion: str | None, output: CheckRunOutput) -> int: ...
    def update_file(self, path: str, branch: str, change: Callable[[str | None], str | None],
                    message: str) -> str | None: ...
    def open_or_update_issue(self, marker: str, title: str, body: str,
                             labels: Sequence[str] = ()) -> Issue: ...
    def close_issue(self, number: int, comment: str | None = None) -> None: ...
