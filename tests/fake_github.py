"""An in-memory ``GitHubPort`` for handler unit tests.

Handlers see GitHub only through ``GitHubPort``; this fake keeps the same facts in plain
dicts so a test can seed a repository, run a handler, and assert on what a user would
see (comments, labels, check runs, files) and on how many calls it took (``stats``).

It behaves as ``bot.github.adapter.PyGithubAdapter`` does on GitHub, so a handler that
passes here does the same for real: the same writes (method, path, body) in
``stats.write_log``, text over GitHub's limits cut with the adapter's note, a sticky comment
or tracking issue recognised only when the bot wrote it and it starts with the marker,
reactions one per user and content, collaborator permissions in GitHub's
admin/write/read/none form, team lookups that fail raising ``TeamLookupError`` instead of
returning nobody, and ``update_file`` re-reading after a 409 from a concurrent commit.
Requests are counted as the adapter's are: one per page of 100 for lists.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from bot.github.adapter import ANNOTATIONS_PER_REQUEST as ANNOTATIONS
from bot.github.adapter import CHECK_TEXT_LIMIT as CHECK_LIMIT
from bot.github.adapter import COMMENT_LIMIT, _cut, _same, _with_marker
from bot.github.adapter import _check_output as _output_body
from bot.github.port import (
    CallStats,
    ChangedFile,
    CheckRunOutput,
    Comment,
    FileContent,
    GitHubError,
    Issue,
    PullRequest,
    Reaction,
    Review,
    ReviewComment,
    TeamLookupError,
    WorkflowRun,
    WriteRecord,
)

PAGE_SIZE = 100
REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})
PERMISSIONS = ("admin", "maintain", "write", "triage", "read", "none")
LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
                     "read": "read", "none": "none"}


def blob_sha(text: str) -> str:
    """Git's blob sha of ``text`` (what the contents API calls ``sha``)."""
    data = text.encode("utf-8")
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _pages(count: int) -> int:
    return max(1, -(-count // PAGE_SIZE))


@dataclass
class CheckRun:
    """A check run as the fake stores it; ``history`` keeps every status it went through."""

    id: int
    head_sha: str
    name: str
    status: str
    conclusion: str | None
    output: CheckRunOutput
    history: list[tuple[str, str | None]]


@dataclass
class _ConcurrentEdit:
    path: str
    branch: str
    edit: Callable[[str | None], str]
    times: int


class FakeGitHub:
    """One repository's worth of GitHub, in memory. See the module docstring for the rules.

    Seed with ``put_file``, ``add_pull``, ``add_issue``, ``add_comment``, ``add_reaction``,
    ``add_review``, ``add_review_comment``, ``set_team``, ``set_permission``,
    ``add_workflow_run``; break things with ``fail_team_lookup``, ``fail`` and
    ``concurrent_edit``; inspect ``pulls``, ``issues``, ``comments``, ``labels``,
    ``check_runs``, ``files``, ``stats`` or the helpers ``comments_on``, ``bot_comments``,
    ``labels_on``, ``check_run``, ``file_text``.
    """

    def __init__(self, repo: str = "octo-org/governance", *,
                 bot_login: str = "cvf-governance[bot]", default_branch: str = "main",
                 now: datetime | None = None) -> None:
        self.repo = repo
        self.bot_login = bot_login
        self.stats = CallStats()
        self._default_branch = default_branch
        # The clock advances one second per stored item so "newest" is never a tie.
        self._clock = now or datetime(2024, 1, 1, tzinfo=UTC)
        self._ids = itertools.count(1001)
        self._numbers = itertools.count(1)
        self._commits = itertools.count(1)
        self.pulls: dict[int, PullRequest] = {}
        self.pull_files: dict[int, list[ChangedFile]] = {}
        self.issues: dict[int, Issue] = {}
        self.labels: dict[int, list[str]] = {}
        self.files: dict[str, dict[str, str]] = {default_branch: {}}  # ref -> path -> text
        self.commits: list[tuple[str, str, str, str]] = []  # (sha, branch, path, message)
        self.comments: dict[int, Comment] = {}  # id -> comment
        self.comment_issue: dict[int, int] = {}  # comment id -> issue/PR number
        self.issue_reactions: dict[int, list[Reaction]] = {}
        self.comment_reactions: dict[int, list[Reaction]] = {}
        self.reviews: dict[int, list[Review]] = {}
        self.review_comments: dict[int, list[ReviewComment]] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.teams: dict[tuple[str, str], set[str]] = {}
        self.pending_members: dict[tuple[str, str], set[str]] = {}
        self.team_failures: dict[tuple[str, str], int] = {}
        self._member_case: dict[str, str] = {}  # lower-case login -> login as seeded
        self.permissions: dict[str, str] = {}
        self.default_permission = "none"
        self.workflow_runs: list[WorkflowRun] = []
        self.conflict_retries = 3  # as the adapter's default
        self._failures: dict[str, list[Exception]] = {}
        # What the adapter would already know within one delivery (it reads comment lists
        # and a commit's check runs once, and knows a comment listed without reactions has
        # none): such a read costs no request here either. ``close`` ends the delivery;
        # a change made by someone else (the seeding helpers) makes the next read count.
        self._known: dict[tuple[object, ...], int] = {}  # -> writes when read
        self._no_reactions: set[int] = set()
        self._committed: dict[tuple[str, str], str] = {}  # (branch, path) -> text committed
        self._concurrent: list[_ConcurrentEdit] = []

    # -- seeding --------------------------------------------------------------------
    def tick(self, seconds: float = 1) -> datetime:
        """Advance the fake's clock (used for created/updated times) and return it."""
        self._clock += timedelta(seconds=seconds)
        return self._clock

    def put_file(self, path: str, text: str | None, ref: str | None = None) -> None:
        """Set (or with ``None`` delete) a file at a ref, without counting a call."""
        tree = self.files.setdefault(ref or self._default_branch, {})
        if text is None:
            tree.pop(path, None)
        else:
            tree[path] = text

    def add_pull(self, number: int | None = None, *, title: str = "A change", body: str = "",
                 author: str = "octocat", files: dict[str, str | None] | None = None,
                 changed: Sequence[ChangedFile] | None = None, labels: Iterable[str] = (),
                 state: str = "open", merged: bool = False, draft: bool = False,
                 head_sha: str | None = None, head_ref: str = "feature",
                 head_repo: str | None = None, base_ref: str | None = None,
                 created_at: datetime | None = None,
                 maintainer_can_modify: bool = False) -> PullRequest:
        """Open a PR. ``files`` maps path -> new text (``None`` = removed) on top of the base
        branch; the changed-file list is derived from it unless ``changed`` is given."""
        number = number if number is not None else self._next_number()
        base = base_ref or self._default_branch
        head_sha = head_sha or hashlib.sha1(f"{self.repo}#{number}".encode(),
                                            usedforsecurity=False).hexdigest()
        base_tree = self.files.setdefault(base, {})
        head_tree = dict(base_tree)
        derived: list[ChangedFile] = []
        for path, text in (files or {}).items():
            if text is None:
                head_tree.pop(path, None)
                derived.append(ChangedFile(path, "removed"))
            else:
                status = "modified" if path in base_tree else "added"
                head_tree[path] = text
                derived.append(ChangedFile(path, status))
        self.files[head_sha] = head_tree
        self.files[head_ref] = dict(head_tree)
        pull = PullRequest(
            number=number, title=title, body=body, author=author, state=state, merged=merged,
            draft=draft, head_sha=head_sha, head_ref=head_ref, head_repo=head_repo or self.repo,
            base_ref=base, base_repo=self.repo, labels=tuple(labels),
            created_at=created_at or self.tick(),
            html_url=f"https://github.com/{self.repo}/pull/{number}",
            maintainer_can_modify=maintainer_can_modify)
        self.pulls[number] = pull
        self.pull_files[number] = list(changed) if changed is not None else derived
        self.labels[number] = list(pull.labels)
        return pull

    def update_pull(self, number: int, **changes: object) -> PullRequest:
        """Change a PR's fields (e.g. ``state="closed"``, ``head_sha=...``)."""
        pull = replace(self.pulls[number], **changes)  # type: ignore[arg-type]
        self.pulls[number] = pull
        if "labels" in changes:
            self.labels[number] = list(pull.labels)
        return pull

    def add_issue(self, number: int | None = None, *, title: str = "An issue", body: str = "",
                  author: str = "octocat", state: str = "open",
                  labels: Iterable[str] = ()) -> Issue:
        number = number if number is not None else self._next_number()
        issue = Issue(number=number, title=title, body=body, state=state,
                      labels=tuple(labels), author=author)
        self.issues[number] = issue
        self.labels[number] = list(issue.labels)
        self.tick()
        return issue

    def add_comment(self, number: int, author: str, body: str, *,
                    created_at: datetime | None = None, is_bot: bool | None = None) -> Comment:
        """A comment on issue/PR ``number`` written by ``author`` (not counted as a call)."""
        when = created_at or self.tick()
        comment = Comment(
            id=next(self._ids), author=author, body=body, created_at=when, updated_at=when,
            author_is_bot=self._is_bot(author) if is_bot is None else is_bot,
            html_url=self._comment_url(number))
        self.comments[comment.id] = comment
        self.comment_issue[comment.id] = number
        self._known.pop(("comments", number), None)
        return comment

    def edit_comment(self, comment_id: int, body: str) -> Comment:
        self._known.pop(("comments", self.comment_issue[comment_id]), None)
        comment = replace(self.comments[comment_id], body=body, updated_at=self.tick())
        self.comments[comment_id] = comment
        return comment

    def delete_comment(self, comment_id: int) -> None:
        self._known.pop(("comments", self.comment_issue.get(comment_id)), None)
        self.comments.pop(comment_id, None)
        self.comment_issue.pop(comment_id, None)
        self.comment_reactions.pop(comment_id, None)

    def add_reaction(self, user: str, content: str, *, number: int | None = None,
                     comment_id: int | None = None,
                     created_at: datetime | None = None) -> Reaction:
        """A reaction on issue/PR ``number`` or on comment ``comment_id``. Like GitHub, the
        same user and content twice is one reaction."""
        if (number is None) == (comment_id is None):
            raise ValueError("give exactly one of number= or comment_id=")
        self._check_reaction(content)
        self._no_reactions.discard(comment_id or 0)
        bucket = (self.issue_reactions.setdefault(number, []) if number is not None
                  else self.comment_reactions.setdefault(comment_id, []))  # type: ignore[arg-type]
        for existing in bucket:
            if existing.user.lower() == user.lower() and existing.content == content:
                return existing
        reaction = Reaction(id=next(self._ids), user=user, content=content,
                            created_at=created_at or self.tick())
        bucket.append(reaction)
        return reaction

    def remove_reaction(self, user: str, content: str, *, number: int | None = None,
                        comment_id: int | None = None) -> None:
        bucket = (self.issue_reactions.get(number, []) if number is not None
                  else self.comment_reactions.get(comment_id or 0, []))
        bucket[:] = [r for r in bucket
                     if not (r.user.lower() == user.lower() and r.content == content)]

    def add_review(self, number: int, author: str, state: str = "APPROVED", *,
                   commit_id: str | None = None,
                   submitted_at: datetime | None = None) -> Review:
        review = Review(id=next(self._ids), author=author, state=state,
                        commit_id=commit_id or self.pulls[number].head_sha,
                        submitted_at=submitted_at or self.tick())
        self.reviews.setdefault(number, []).append(review)
        return review

    def add_review_comment(self, number: int, author: str, body: str, *, path: str = "README.md",
                           in_reply_to_id: int | None = None,
                           created_at: datetime | None = None) -> ReviewComment:
        comment = ReviewComment(id=next(self._ids), author=author, body=body, path=path,
                                in_reply_to_id=in_reply_to_id,
                                created_at=created_at or self.tick())
        self.review_comments.setdefault(number, []).append(comment)
        return comment

    def set_team(self, org: str, slug: str, members: Iterable[str],
                 pending: Iterable[str] = ()) -> None:
        """Define a team. ``pending`` members were invited but have not accepted: GitHub
        reports their membership as ``pending`` and they are not members yet."""
        self.teams[(org.lower(), slug.lower())] = {m.lower() for m in members}
        self.pending_members[(org.lower(), slug.lower())] = {m.lower() for m in pending}
        for login in members:
            self._member_case[login.lower()] = login

    def fail_team_lookup(self, org: str, slug: str, times: int = -1) -> None:
        """Make reading this team fail (as with a token lacking ``members:read``), ``times``
        times or, with -1, until ``heal_team_lookup``."""
        self.team_failures[(org.lower(), slug.lower())] = times

    def heal_team_lookup(self, org: str, slug: str) -> None:
        self.team_failures.pop((org.lower(), slug.lower()), None)

    def set_permission(self, login: str, permission: str) -> None:
        if permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {PERMISSIONS}, got {permission!r}")
        self.permissions[login.lower()] = permission

    def add_workflow_run(self, name: str = "CI", *, conclusion: str | None = "success",
                         status: str = "completed", created_at: datetime | None = None,
                         updated_at: datetime | None = None, head_sha: str = "",
                         event: str = "push", actor: str = "octocat") -> WorkflowRun:
        created = created_at or self.tick()
        run = WorkflowRun(id=next(self._ids), name=name, conclusion=conclusion, status=status,
                          created_at=created, updated_at=updated_at or created,
                          head_sha=head_sha, event=event, actor=actor)
        self.workflow_runs.append(run)
        return run

    def fail(self, method: str, error: Exception | None = None, times: int = 1) -> None:
        """Make the next ``times`` calls of port method ``method`` raise ``error`` (by default
        a ``GitHubError`` with status 502, as if the adapter's retries ran out)."""
        if not hasattr(self, method):
            raise AttributeError(f"FakeGitHub has no method {method!r}")
        exc = error or GitHubError(f"GitHub answered 502 to {method}", status=502)
        self._failures.setdefault(method, []).extend([exc] * times)

    def concurrent_edit(self, path: str, edit: Callable[[str | None], str], *,
                        branch: str | None = None, times: int = 1) -> None:
        """Someone else commits ``edit(current)`` to ``path`` between ``update_file``'s read
        and its write, ``times`` times: the write gets a 409 and must re-read."""
        self._concurrent.append(_ConcurrentEdit(path, branch or self._default_branch, edit,
                                                times))

    # -- inspection -----------------------------------------------------------------
    def comments_on(self, number: int) -> list[Comment]:
        return sorted((c for cid, c in self.comments.items()
                       if self.comment_issue[cid] == number), key=lambda c: (c.created_at, c.id))

    def bot_comments(self, number: int) -> list[Comment]:
        return [c for c in self.comments_on(number) if self._is_self(c.author)]

    def labels_on(self, number: int) -> list[str]:
        return list(self.labels.get(number, []))

    def check_run(self, name: str, head_sha: str | None = None) -> CheckRun | None:
        """The newest check run called ``name`` (on ``head_sha`` if given)."""
        found = [r for r in self.check_runs.values()
                 if r.name == name and (head_sha is None or r.head_sha == head_sha)]
        return found[-1] if found else None

    def file_text(self, path: str, ref: str | None = None) -> str | None:
        return self.files.get(ref or self._default_branch, {}).get(path)

    def writes(self, method: str | None = None, path_contains: str = "") -> list[WriteRecord]:
        return [w for w in self.stats.write_log
                if (method is None or w.method == method) and path_contains in w.path]

    # -- facts ----------------------------------------------------------------------
    def get_pull(self, number: int) -> PullRequest:
        self._call("get_pull")
        pull = self._pull(number)
        return replace(pull, labels=tuple(self.labels.get(number, [])))

    def list_pull_files(self, number: int) -> list[ChangedFile]:
        self._pull(number)
        files = list(self.pull_files.get(number, []))
        self._call("list_pull_files", _pages(len(files)))
        return files

    def get_file(self, path: str, ref: str | None = None) -> FileContent | None:
        self._call("get_file")
        text = self.files.get(ref or self._default_branch, {}).get(path)
        return None if text is None else FileContent(path=path, text=text, sha=blob_sha(text))

    def list_issue_comments(self, number: int) -> list[Comment]:
        self._issue_exists(number)
        found = self.comments_on(number)
        known = ("comments", number) in self._known
        self._call("list_issue_comments", 0 if known else _pages(len(found)))
        if not known:
            self._known[("comments", number)] = self.stats.writes
            self._no_reactions.update(c.id for c in found
                                      if not self.comment_reactions.get(c.id))
        return found

    def close(self) -> None:
        """The end of a delivery: the next one knows nothing yet (as a new adapter)."""
        self._known.clear()
        self._no_reactions.clear()
        self._committed.clear()

    def list_review_comments(self, number: int) -> list[ReviewComment]:
        self._pull(number)
        found = list(self.review_comments.get(number, []))
        self._call("list_review_comments", _pages(len(found)))
        return found

    def list_reviews(self, number: int) -> list[Review]:
        self._pull(number)
        found = list(self.reviews.get(number, []))
        self._call("list_reviews", _pages(len(found)))
        return found

    def list_issue_reactions(self, number: int) -> list[Reaction]:
        self._issue_exists(number)
        found = list(self.issue_reactions.get(number, []))
        self._call("list_issue_reactions", _pages(len(found)))
        return found

    def list_comment_reactions(self, comment_id: int) -> list[Reaction]:
        if comment_id not in self.comments:
            self._call("list_comment_reactions")
            raise GitHubError(f"comment {comment_id} not found in {self.repo}", status=404)
        found = list(self.comment_reactions.get(comment_id, []))
        self._call("list_comment_reactions",
                   0 if comment_id in self._no_reactions else _pages(len(found)))
        return found

    def team_members(self, org: str, team_slug: str) -> list[str]:
        key = self._team(org, team_slug)
        members = sorted(self._member_case.get(m, m) for m in self.teams[key])
        self._call("team_members", _pages(len(members)))
        return members

    def is_team_member(self, org: str, team_slug: str, login: str) -> bool:
        """Like the adapter: one membership read; a non-member costs a second read of the
        team (GitHub's 404 does not say whether the team or the membership is missing)."""
        key = self._team(org, team_slug, missing_costs=2)
        member = login.lower() in self.teams[key]
        self._call("is_team_member", 1 if member or login.lower() in
                   self.pending_members.get(key, set()) else 2)
        return member

    def collaborator_permission(self, login: str) -> str:
        """GitHub's ``permission`` field, as the adapter returns it: admin, write, read or
        none (a maintainer reads as ``write``, a triager as ``read``)."""
        self._call("collaborator_permission")
        role = self.permissions.get(login.lower(), self.default_permission)
        return LEGACY_PERMISSION[role]

    def search_open_pulls(self, label: str) -> list[int]:
        found = sorted(n for n, p in self.pulls.items()
                       if p.state == "open" and label in self.labels.get(n, []))
        self._call("search_open_pulls", _pages(len(found)))
        return found

    def find_issue(self, marker: str) -> Issue | None:
        """The bot's open issue whose body starts with ``marker`` (closed ones are a person's
        decision and are left alone; a user's issue quoting the marker never counts)."""
        mine = [i for i in self.issues.values()
                if i.state == "open" and self._is_self(i.author) and i.body.startswith(marker)]
        self._call("find_issue", _pages(len(mine)))
        if not mine:
            return None
        found = max(mine, key=lambda i: i.number)
        return replace(found, labels=tuple(self.labels.get(found.number, [])))

    def list_workflow_runs(self, since: datetime | None = None) -> list[WorkflowRun]:
        found = [r for r in self.workflow_runs if since is None or r.created_at >= since]
        found.sort(key=lambda r: r.created_at, reverse=True)
        self._call("list_workflow_runs", _pages(len(found)))
        return found

    def list_updated_open(self, since: datetime) -> list[tuple[int, bool]]:
        """Open issues and pull requests with a comment written or edited since ``since``
        (the fake keeps no issue ``updated_at``; comments are what the sweep is for)."""
        touched = {self.comment_issue[c.id] for c in self.comments.values()
                   if c.updated_at >= since}
        found = [(n, False) for n, i in self.issues.items() if i.state == "open" and n in touched]
        found += [(n, True) for n, p in self.pulls.items() if p.state == "open" and n in touched]
        self._call("list_updated_open", _pages(len(found)))
        return sorted(found)

    def default_branch(self) -> str:
        self._call("default_branch")
        return self._default_branch

    # -- actions (written the way bot.github.adapter writes them) ---------------------
    def create_comment(self, number: int, body: str) -> Comment:
        """Post a comment; text over GitHub's limit is cut with a note, as the adapter does."""
        self._call("create_comment", 0)
        self._issue_exists(number)
        text = _cut(body, COMMENT_LIMIT)
        self._write("POST", f"/repos/{self.repo}/issues/{number}/comments", {"body": text})
        created = self.add_comment(number, self.bot_login, text, is_bot=True)
        self._no_reactions.add(created.id)
        return created

    def upsert_sticky_comment(self, number: int, marker: str, body: str) -> Comment:
        """Edit the bot's comment starting with ``marker``, or create it; no write when the
        text is unchanged. The marker is put first when ``body`` does not start with it."""
        text = _cut(_with_marker(marker, body), COMMENT_LIMIT)
        existing = [c for c in self.list_issue_comments(number)
                    if self._is_self(c.author) and c.body.startswith(marker)]
        self._call("upsert_sticky_comment", 0)
        if not existing:
            return self._one_sticky(number, marker, text, self.create_comment(number, text))
        current = existing[0]
        if _same(current.body, text):
            return current
        self._write("PATCH", f"/repos/{self.repo}/issues/comments/{current.id}", {"body": text})
        return self.edit_comment(current.id, text)

    def _one_sticky(self, number: int, marker: str, text: str, created: Comment) -> Comment:
        """As the adapter: after creating, read again and keep only the oldest bot comment
        with the marker, so two racing deliveries never leave the status twice."""
        mine = [c for c in self.list_issue_comments(number)
                if self._is_self(c.author) and c.body.startswith(marker)]
        if len(mine) <= 1:
            return created
        keep = min(mine, key=lambda c: c.id)
        for extra in mine:
            if extra.id != keep.id:
                self._write("DELETE", f"/repos/{self.repo}/issues/comments/{extra.id}")
                self.delete_comment(extra.id)
        if _same(keep.body, text):
            return keep
        self._write("PATCH", f"/repos/{self.repo}/issues/comments/{keep.id}", {"body": text})
        return self.edit_comment(keep.id, text)

    def add_comment_reaction(self, comment_id: int, content: str) -> None:
        self._call("add_comment_reaction", 0)
        self._no_reactions.discard(comment_id)
        self._write("POST", f"/repos/{self.repo}/issues/comments/{comment_id}/reactions",
                    {"content": content})
        if comment_id not in self.comments:
            raise GitHubError(f"comment {comment_id} not found in {self.repo}", status=404)
        self._check_reaction(content)
        self.add_reaction(self.bot_login, content, comment_id=comment_id)

    def request_reviewers(self, number: int, users: Sequence[str],
                          teams: Sequence[str]) -> None:
        if not users and not teams:
            return
        self._call("request_reviewers", 0)
        pull = self.pulls[number]
        if pull.author.lower() in (u.lower() for u in users):
            raise GitHubError("Review cannot be requested from pull request author.",
                              status=422)
        self._write("POST", f"/repos/{self.repo}/pulls/{number}/requested_reviewers",
                    {"reviewers": list(users), "team_reviewers": list(teams)})
        self.pulls[number] = replace(
            pull, requested_reviewers=tuple(dict.fromkeys([*pull.requested_reviewers, *users])),
            requested_teams=tuple(dict.fromkeys([*pull.requested_teams, *teams])))

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        if isinstance(labels, str):
            raise TypeError("add_labels takes a sequence of label names, not one string")
        if not labels:
            return
        self._call("add_labels", 0)
        self._issue_exists(number)
        self._write("POST", f"/repos/{self.repo}/issues/{number}/labels",
                    {"labels": list(labels)})
        current = self.labels.setdefault(number, [])
        for label in labels:
            if label.lower() not in (c.lower() for c in current):
                current.append(label)

    def remove_label(self, number: int, label: str) -> None:
        """Removing a label the issue does not have is not an error (the adapter treats
        GitHub's 404 as done), but the request was still made."""
        self._call("remove_label", 0)
        self._issue_exists(number)
        self._write("DELETE", f"/repos/{self.repo}/issues/{number}/labels/"
                              f"{quote(label, safe='')}")
        current = self.labels.setdefault(number, [])
        current[:] = [c for c in current if c.lower() != label.lower()]

    def set_check_run(self, head_sha: str, name: str, *, status: str,
                      conclusion: str | None, output: CheckRunOutput) -> int:
        """Create the check run ``name`` on ``head_sha``, or update the one already there;
        annotations go 50 per request, the rest in further updates."""
        # The adapter lists the commit's runs once per delivery (none on its own commits).
        self._call("set_check_run", 0 if ("checks", head_sha) in self._known else 1)
        self._known[("checks", head_sha)] = self.stats.writes
        self._check_check_run(status, conclusion)
        existing = [r for r in self.check_runs.values()
                    if r.head_sha == head_sha and r.name == name]
        annotations = list(output.annotations)
        body: dict[str, object] = {"name": name, "status": status,
                                   "output": _output_body(output, annotations[:ANNOTATIONS])}
        if conclusion is not None:
            body["conclusion"] = conclusion
        stored = CheckRunOutput(title=output.title, summary=_cut(output.summary, CHECK_LIMIT),
                                text=_cut(output.text, CHECK_LIMIT) if output.text else "",
                                annotations=tuple(annotations))
        if existing and (existing[-1].status, existing[-1].conclusion, existing[-1].output.title,
                         existing[-1].output.summary, existing[-1].output.text,
                         len(existing[-1].output.annotations)) == \
                (status, conclusion, stored.title, stored.summary, stored.text,
                 len(annotations)):
            return existing[-1].id  # it already shows exactly this: no write
        if existing:
            run = existing[-1]
            self._write("PATCH", f"/repos/{self.repo}/check-runs/{run.id}", body)
            run.status, run.conclusion, run.output = status, conclusion, stored
            run.history.append((status, conclusion))
        else:
            self._write("POST", f"/repos/{self.repo}/check-runs", {**body, "head_sha": head_sha})
            run = CheckRun(id=next(self._ids), head_sha=head_sha, name=name, status=status,
                           conclusion=conclusion, output=stored,
                           history=[(status, conclusion)])
            self.check_runs[run.id] = run
        for start in range(ANNOTATIONS, len(annotations), ANNOTATIONS):
            batch = annotations[start:start + ANNOTATIONS]
            self._write("PATCH", f"/repos/{self.repo}/check-runs/{run.id}",
                        {"output": _output_body(output, batch)})
        return run.id

    def update_file(self, path: str, branch: str, change: Callable[[str | None], str | None],
                    message: str) -> str | None:
        """Commit ``change(current_text)`` to ``path`` on ``branch``; returns the commit sha,
        or ``None`` when ``change`` returned ``None`` or the same text (nothing written).

        Like the adapter: the PUT names the blob sha just read; if someone committed
        meanwhile (see ``concurrent_edit``) GitHub answers 409 and the file is read again
        and ``change`` re-applied, up to ``conflict_retries`` more times."""
        self._call("update_file", 0)
        tree = self.files.setdefault(branch, {})
        for attempt in range(self.conflict_retries + 1):
            old = tree.get(path)
            # The adapter knows a file it committed itself in this delivery (a conflict
            # reads again).
            if attempt or old is None or self._committed.get((branch, path)) != old:
                self.stats.requests += 1  # GET contents
            old_sha = blob_sha(old) if old is not None else None
            new = change(old)
            if new is None or new == old:
                return None
            self._apply_concurrent_edit(path, branch)
            current = tree.get(path)
            body: dict[str, object] = {
                "message": message, "branch": branch,
                "content": base64.b64encode(new.encode("utf-8")).decode("ascii")}
            if old_sha is not None:
                body["sha"] = old_sha
            self._write("PUT", f"/repos/{self.repo}/contents/{quote(path)}", body)
            if (blob_sha(current) if current is not None else None) != old_sha:
                continue  # 409: someone committed since we read; read again
            tree[path] = new
            sha = hashlib.sha1(f"commit {next(self._commits)} {path}".encode(),
                               usedforsecurity=False).hexdigest()
            self.commits.append((sha, branch, path, message))
            self._known[("checks", sha)] = self.stats.writes  # the bot's own commit
            self._committed[(branch, path)] = new
            return sha
        raise GitHubError(
            f"{path} on {branch} kept changing while the bot tried to commit "
            f"({self.conflict_retries + 1} conflicts); try again", status=409)

    def open_or_update_issue(self, marker: str, title: str, body: str,
                             labels: Sequence[str] = ()) -> Issue:
        """Update the bot's open issue starting with ``marker`` (only what changed; nothing
        when nothing did), else open a new one."""
        text = _cut(_with_marker(marker, body), COMMENT_LIMIT)
        found = self.find_issue(marker)
        self._call("open_or_update_issue", 0)
        if found is None:
            number = self._next_number()
            self._write("POST", f"/repos/{self.repo}/issues",
                        {"title": title, "body": text, "labels": list(labels)})
            return self.add_issue(number, title=title, body=text, author=self.bot_login,
                                  labels=labels)
        changes: dict[str, object] = {}
        if found.title != title:
            changes["title"] = title
        if not _same(found.body, text):
            changes["body"] = text
        if changes:
            self._write("PATCH", f"/repos/{self.repo}/issues/{found.number}", changes)
            self.issues[found.number] = replace(self.issues[found.number], title=title,
                                                body=text)
        self.add_labels(found.number, [x for x in labels if x not in found.labels])
        return replace(self.issues[found.number],
                       labels=tuple(self.labels.get(found.number, [])))

    def close_issue(self, number: int, comment: str | None = None) -> None:
        """Close an issue (optionally saying why); closing a closed issue writes nothing."""
        self._call("close_issue")  # the adapter reads the issue first
        issue = self.issues.get(number)
        if issue is None:
            raise GitHubError(f"issue {number} not found in {self.repo}", status=404)
        if issue.state == "closed":
            return
        if comment:
            self.create_comment(number, comment)
        self._write("PATCH", f"/repos/{self.repo}/issues/{number}", {"state": "closed"})
        self.issues[number] = replace(issue, state="closed")

    # -- internals ------------------------------------------------------------------
    def _next_number(self) -> int:
        used = set(self.pulls) | set(self.issues)
        number = next(self._numbers)
        while number in used:
            number = next(self._numbers)
        return number

    def _call(self, method: str, requests: int = 1) -> None:
        """Count ``requests`` for port method ``method``, or raise a failure queued by ``fail``."""
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)
        self.stats.requests += requests

    def _write(self, method: str, path: str, body: object = None) -> None:
        self.stats.requests += 1
        self.stats.writes += 1
        self.stats.write_log.append(WriteRecord(method=method, path=path, body=body))

    def _pull(self, number: int) -> PullRequest:
        pull = self.pulls.get(number)
        if pull is None:
            raise GitHubError(f"pull request {number} not found in {self.repo}", status=404)
        return pull

    def _issue_exists(self, number: int) -> None:
        if number not in self.pulls and number not in self.issues:
            raise GitHubError(f"issue {number} not found in {self.repo}", status=404)

    def _team(self, org: str, slug: str, missing_costs: int = 1) -> tuple[str, str]:
        key = (org.lower(), slug.lower())
        remaining = self.team_failures.get(key)
        if remaining is not None and remaining != 0:
            self.stats.requests += 1
            if remaining > 0:
                self.team_failures[key] = remaining - 1
            raise TeamLookupError(
                f"cannot read team {org}/{slug}: GitHub answered 403; give the bot's token "
                f"the members:read (organization) permission", status=403)
        if key not in self.teams:
            self.stats.requests += missing_costs
            raise TeamLookupError(
                f"team {org}/{slug} not found (404); check the team slug in .github/cvf.yml",
                status=404)
        return key

    def _is_self(self, login: str) -> bool:
        return login.lower() == self.bot_login.lower()

    def _is_bot(self, login: str) -> bool:
        return self._is_self(login) or login.lower().endswith("[bot]")

    def _comment_url(self, number: int) -> str:
        kind = "pull" if number in self.pulls else "issues"
        return f"https://github.com/{self.repo}/{kind}/{number}"

    def _apply_concurrent_edit(self, path: str, branch: str) -> None:
        for pending in self._concurrent:
            if pending.path == path and pending.branch == branch and pending.times > 0:
                pending.times -= 1
                tree = self.files.setdefault(branch, {})
                tree[path] = pending.edit(tree.get(path))
                return

    @staticmethod
    def _check_reaction(content: str) -> None:
        if content not in REACTIONS:
            raise GitHubError(f"reaction {content!r} is not one GitHub accepts "
                              f"({', '.join(sorted(REACTIONS))})", status=422)

    @staticmethod
    def _check_check_run(status: str, conclusion: str | None) -> None:
        if status not in ("queued", "in_progress", "completed"):
            raise GitHubError(f"check run status {status!r} is invalid (422)", status=422)
        if status == "completed" and conclusion is None:
            raise GitHubError("a completed check run needs a conclusion (422)", status=422)
