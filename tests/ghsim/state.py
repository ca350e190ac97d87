"""The simulated GitHub's data: plain records, the seeding helpers tests call, and lookups.

Everything lives in one ``World`` guarded by one re-entrant lock: the HTTP layer holds it
while a request reads or changes state, and the seeding helpers take it too, so a test
may seed while the bot is talking to the simulator.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
PERMISSIONS = ("admin", "maintain", "write", "triage", "read", "none")


def blob_sha(data: bytes) -> str:
    """Git's blob sha, which the contents API reports as ``sha``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def fake_sha(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()


@dataclass
class User:
    login: str
    id: int

    @property
    def type(self) -> str:
        return "Bot" if self.login.lower().endswith("[bot]") else "User"


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class PullInfo:
    head_sha: str
    head_ref: str
    head_repo: str
    base_ref: str
    draft: bool = False
    merged: bool = False
    maintainer_can_modify: bool = False
    files: list[dict[str, object]] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)  # logins
    requested_teams: list[str] = field(default_factory=list)  # slugs of the repo's org


@dataclass
class IssueRec:
    """An issue or (with ``pull``) a pull request: they share numbers and comments."""

    id: int
    number: int
    title: str
    body: str | None
    user: str
    state: str
    labels: list[str]
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    pull: PullInfo | None = None
    state_reason: str | None = None
    closed_by: str | None = None


@dataclass
class CommentRec:
    id: int
    number: int
    user: str
    body: str
    created_at: datetime
    updated_at: datetime


@dataclass
class ReviewCommentRec:
    id: int
    number: int
    user: str
    body: str
    path: str
    commit_id: str
    in_reply_to_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass
class ReviewRec:
    id: int
    number: int
    user: str
    state: str
    commit_id: str
    body: str
    submitted_at: datetime


@dataclass
class ReactionRec:
    id: int
    subject: tuple[str, int]  # ("issue", number) | ("comment", id) | ("review_comment", id)
    user: str
    content: str
    created_at: datetime


@dataclass
class CheckRunRec:
    id: int
    head_sha: str
    name: str
    status: str
    conclusion: str | None
    output: dict[str, object]
    app_slug: str
    started_at: datetime
    completed_at: datetime | None
    external_id: str = ""
    details_url: str | None = None
    history: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass
class WorkflowRunRec:
    id: int
    name: str
    status: str
    conclusion: str | None
    head_sha: str
    head_branch: str
    event: str
    actor: str
    created_at: datetime
    updated_at: datetime
    run_number: int = 1


@dataclass
class CommitRec:
    sha: str
    branch: str
    path: str
    message: str
    author: str
    date: datetime


@dataclass
class Team:
    id: int
    org: str
    slug: str
    name: str
    members: list[str]
    pending: list[str] = field(default_factory=list)
    maintainers: list[str] = field(default_factory=list)


@dataclass
class Installation:
    id: int
    account: str
    app_slug: str


@dataclass
class TokenGrant:
    token: str
    installation_id: int
    expires_at: datetime


class Repo:
    """One repository. Seed it with the ``add_*``/``put_file``/``set_*`` helpers and read
    what the bot did with ``comments_on``, ``labels_on``, ``file_text``, ``check_runs``."""

    def __init__(self, world: World, owner: str, name: str, *, default_branch: str = "main",
                 private: bool = False) -> None:
        self.world = world
        self.id = world.new_id()
        self.owner = owner
        self.name = name
        self.default_branch = default_branch
        self.private = private
        self.created_at = world.now()
        self.files: dict[str, dict[str, bytes]] = {default_branch: {}}
        self.commits: list[CommitRec] = []
        self.branch_heads: dict[str, str] = {}  # branch -> sha of its newest commit
        self._concurrent: list[tuple[str, str, Callable[[str | None], str], list[int]]] = []
        self.issues: dict[int, IssueRec] = {}
        self.comments: dict[int, CommentRec] = {}
        # Indexes, so a long-running load test does not slow down as comments pile up.
        self.comments_by_issue: dict[int, dict[int, CommentRec]] = {}
        self.reactions_by_subject: dict[tuple[str, int], dict[int, ReactionRec]] = {}
        self.review_comments: dict[int, ReviewCommentRec] = {}
        self.reviews: dict[int, ReviewRec] = {}
        self.reactions: dict[int, ReactionRec] = {}
        self.labels: dict[str, Label] = {}
        self.check_runs: dict[int, CheckRunRec] = {}
        self.permissions: dict[str, str] = {}
        self.workflow_runs: dict[int, WorkflowRunRec] = {}
        self._numbers = itertools.count(1)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    # -- seeding ----------------------------------------------------------------------
    def put_file(self, path: str, text: str | bytes | None, ref: str | None = None) -> None:
        """Set (``None``: delete) a file at a branch or sha, as if already committed."""
        with self.world.lock:
            tree = self.files.setdefault(ref or self.default_branch, {})
            if text is None:
                tree.pop(path, None)
            else:
                tree[path] = text.encode("utf-8") if isinstance(text, str) else text

    def commit_file(self, path: str, data: bytes, branch: str, message: str,
                    author: str) -> CommitRec:
        """Commit ``data`` to ``path`` on ``branch`` (what a contents PUT does)."""
        with self.world.lock:
            commit = CommitRec(fake_sha(self.full_name, branch, path, len(self.commits), data),
                               branch, path, message, author, self.world.now())
            self.commits.append(commit)
            self.branch_heads[branch] = commit.sha
            self.files.setdefault(branch, {})[path] = data
            self.files[commit.sha] = dict(self.files[branch])
            # As on GitHub, a commit to an open pull request's head branch is its new head.
            for issue in self.issues.values():
                pull = issue.pull
                if pull is not None and issue.state == "open" and pull.head_ref == branch \
                        and pull.head_repo.lower() == self.full_name.lower():
                    pull.head_sha = commit.sha
            return commit

    def concurrent_edit(self, path: str, edit: Callable[[str | None], str], *,
                        branch: str | None = None, times: int = 1) -> None:
        """Someone else commits ``edit(current text)`` to ``path`` just before each of the
        next ``times`` contents PUTs to it, so a PUT naming the sha it read gets GitHub's
        409 and the bot must read again: a real conflict, not an injected status."""
        with self.world.lock:
            self._concurrent.append((path, branch or self.default_branch, edit, [times]))

    def apply_concurrent_edit(self, path: str, branch: str) -> None:
        with self.world.lock:
            for wanted, on, edit, left in self._concurrent:
                if wanted == path and on == branch and left[0] > 0:
                    left[0] -= 1
                    old = self.files.get(branch, {}).get(path)
                    new = edit(old.decode("utf-8") if old is not None else None)
                    self.commit_file(path, new.encode("utf-8"), branch, "concurrent edit",
                                     "someone-else")
                    return

    def add_label(self, name: str, color: str = "ededed",
                  description: str | None = None) -> Label:
        with self.world.lock:
            label = self.labels.get(name.lower())
            if label is None:
                label = Label(self.world.new_id(), name, color, description)
                self.labels[name.lower()] = label
            return label

    def add_issue(self, number: int | None = None, *, title: str = "An issue",
                  body: str | None = "", author: str = "octocat", state: str = "open",
                  labels: Iterable[str] = (), created_at: datetime | None = None) -> IssueRec:
        with self.world.lock:
            number = self._number(number)
            when = created_at or self.world.now()
            names = [self.add_label(name).name for name in labels]
            issue = IssueRec(id=self.world.new_id(), number=number, title=title, body=body,
                             user=self.world.user(author).login, state=state, labels=names,
                             created_at=when, updated_at=when,
                             closed_at=when if state == "closed" else None)
            self.issues[number] = issue
            return issue

    def add_pull(self, number: int | None = None, *, title: str = "A change",
                 body: str | None = "", author: str = "octocat",
                 files: dict[str, str | None] | None = None, labels: Iterable[str] = (),
                 state: str = "open", merged: bool = False, draft: bool = False,
                 head_sha: str | None = None, head_ref: str = "feature",
                 head_repo: str | None = None, base_ref: str | None = None,
                 created_at: datetime | None = None,
                 maintainer_can_modify: bool = False) -> IssueRec:
        """A pull request whose head is the base branch plus ``files`` (path -> new text,
        ``None`` = removed); its file list and the contents at its head follow from that."""
        with self.world.lock:
            issue = self.add_issue(number, title=title, body=body, author=author, state=state,
                                   labels=labels, created_at=created_at)
            base = base_ref or self.default_branch
            sha = head_sha or fake_sha(self.full_name, issue.number, "head")
            base_tree = self.files.setdefault(base, {})
            head_tree = dict(base_tree)
            changed: list[dict[str, object]] = []
            for path, text in (files or {}).items():
                old = base_tree.get(path)
                if text is None:
                    head_tree.pop(path, None)
                    changed.append(_file_entry(path, "removed", old, None))
                else:
                    new = text.encode("utf-8")
                    head_tree[path] = new
                    changed.append(_file_entry(path, "modified" if old is not None
                                               else "added", old, new))
            self.files[sha] = head_tree
            self.files.setdefault(head_ref, dict(head_tree))
            issue.pull = PullInfo(head_sha=sha, head_ref=head_ref,
                                  head_repo=head_repo or self.full_name, base_ref=base,
                                  draft=draft, merged=merged, files=changed,
                                  maintainer_can_modify=maintainer_can_modify)
            return issue

    def add_comment(self, number: int, author: str, body: str, *,
                    created_at: datetime | None = None) -> CommentRec:
        with self.world.lock:
            self.issue(number)
            when = created_at or self.world.now()
            comment = CommentRec(self.world.new_id(), number, self.world.user(author).login,
                                 body, when, when)
            issue = self.issue(number)
            issue.updated_at = max(issue.updated_at, when)  # as GitHub does
            self.comments[comment.id] = comment
            self.comments_by_issue.setdefault(number, {})[comment.id] = comment
            return comment

    def delete_comment(self, comment_id: int) -> None:
        """Remove an issue comment and its reactions (as if someone deleted it)."""
        with self.world.lock:
            comment = self.comments.pop(comment_id, None)
            if comment is not None:
                self.comments_by_issue.get(comment.number, {}).pop(comment_id, None)
            for rid in self.reactions_by_subject.pop(("comment", comment_id), {}):
                self.reactions.pop(rid, None)

    def delete_reaction(self, reaction_id: int) -> None:
        with self.world.lock:
            reaction = self.reactions.pop(reaction_id, None)
            if reaction is not None:
                self.reactions_by_subject.get(reaction.subject, {}).pop(reaction_id, None)

    def add_review_comment(self, number: int, author: str, body: str, *,
                           path: str = "README.md", in_reply_to_id: int | None = None,
                           created_at: datetime | None = None) -> ReviewCommentRec:
        with self.world.lock:
            pull = self.pull(number)
            when = created_at or self.world.now()
            comment = ReviewCommentRec(self.world.new_id(), number,
                                       self.world.user(author).login, body, path,
                                       pull.head_sha, in_reply_to_id, when, when)
            self.review_comments[comment.id] = comment
            return comment

    def add_review(self, number: int, author: str, state: str = "APPROVED", *,
                   body: str = "", commit_id: str | None = None,
                   submitted_at: datetime | None = None) -> ReviewRec:
        with self.world.lock:
            pull = self.pull(number)
            review = ReviewRec(self.world.new_id(), number, self.world.user(author).login,
                               state, commit_id or pull.head_sha, body,
                               submitted_at or self.world.now())
            self.reviews[review.id] = review
            return review

    def add_reaction(self, user: str, content: str, *, number: int | None = None,
                     comment_id: int | None = None,
                     review_comment_id: int | None = None) -> tuple[ReactionRec, bool]:
        """React to an issue/PR, an issue comment or a review comment. Returns the reaction
        and whether it is new: one user's same reaction twice is one reaction, as on GitHub."""
        with self.world.lock:
            if content not in REACTIONS:
                raise ValueError(f"reaction must be one of {REACTIONS}, got {content!r}")
            if number is not None:
                self.issue(number)
                subject = ("issue", number)
            elif comment_id is not None:
                subject = ("comment", comment_id)
            elif review_comment_id is not None:
                subject = ("review_comment", review_comment_id)
            else:
                raise ValueError("give number=, comment_id= or review_comment_id=")
            login = self.world.user(user).login
            bucket = self.reactions_by_subject.setdefault(subject, {})
            for existing in bucket.values():
                if existing.content == content and existing.user.lower() == login.lower():
                    return existing, False
            reaction = ReactionRec(self.world.new_id(), subject, login, content,
                                   self.world.now())
            self.reactions[reaction.id] = reaction
            bucket[reaction.id] = reaction
            return reaction, True

    def set_permission(self, login: str, permission: str) -> None:
        """A collaborator's permission (admin, maintain, write, triage, read, none)."""
        if permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {PERMISSIONS}, got {permission!r}")
        with self.world.lock:
            self.permissions[self.world.user(login).login.lower()] = permission

    def add_workflow_run(self, name: str = "CI", *, status: str = "completed",
                         conclusion: str | None = "success", head_sha: str = "",
                         head_branch: str | None = None, event: str = "push",
                         actor: str = "octocat", created_at: datetime | None = None,
                         updated_at: datetime | None = None) -> WorkflowRunRec:
        with self.world.lock:
            when = created_at or self.world.now()
            run = WorkflowRunRec(self.world.new_id(), name, status, conclusion,
                                 head_sha or fake_sha(name, when), head_branch or
                                 self.default_branch, event, self.world.user(actor).login,
                                 when, updated_at or when, len(self.workflow_runs) + 1)
            self.workflow_runs[run.id] = run
            return run

    # -- inspection ---------------------------------------------------------------------
    def issue(self, number: int) -> IssueRec:
        issue = self.issues.get(number)
        if issue is None:
            raise KeyError(f"{self.full_name} has no issue or pull request #{number}")
        return issue

    def pull(self, number: int) -> PullInfo:
        pull = self.issue(number).pull
        if pull is None:
            raise KeyError(f"{self.full_name}#{number} is an issue, not a pull request")
        return pull

    def comments_on(self, number: int) -> list[CommentRec]:
        with self.world.lock:
            return list(self.comments_by_issue.get(number, {}).values())

    def labels_on(self, number: int) -> list[str]:
        with self.world.lock:
            return list(self.issue(number).labels)

    def reactions_on(self, *, number: int | None = None,
                     comment_id: int | None = None) -> list[ReactionRec]:
        subject = ("issue", number) if number is not None else ("comment", comment_id or 0)
        with self.world.lock:
            return list(self.reactions_by_subject.get(subject, {}).values())

    def file_text(self, path: str, ref: str | None = None) -> str | None:
        with self.world.lock:
            data = self.files.get(ref or self.default_branch, {}).get(path)
            return None if data is None else data.decode("utf-8")

    def check_runs_for(self, head_sha: str, name: str | None = None) -> list[CheckRunRec]:
        with self.world.lock:
            return [r for r in self.check_runs.values()
                    if r.head_sha == head_sha and (name is None or r.name == name)]

    def _number(self, wanted: int | None) -> int:
        if wanted is not None:
            if wanted in self.issues:
                raise ValueError(f"{self.full_name}#{wanted} already exists")
            return wanted
        number = next(self._numbers)
        while number in self.issues:
            number = next(self._numbers)
        return number


class World:
    """Everything the simulator knows: users, orgs, teams, repositories, app installations."""

    def __init__(self, *, clock: Callable[[], datetime] | None = None,
                 default_login: str = "cvf-governance[bot]") -> None:
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(UTC).replace(microsecond=0))
        self.default_login = default_login
        self._ids = itertools.count(1000)
        self.users: dict[str, User] = {}
        self.orgs: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.teams: dict[tuple[str, str], Team] = {}
        self.installations: dict[int, Installation] = {}
        self.token_logins: dict[str, str] = {}
        self.grants: dict[str, TokenGrant] = {}
        self.token_ttl = timedelta(hours=1)
        # App manifest flow: the code GitHub puts in the redirect -> (owner, manifest).
        self.manifest_codes: dict[str, tuple[str, dict[str, Any]]] = {}

    def now(self) -> datetime:
        return self.clock()

    def new_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def user(self, login: str) -> User:
        with self.lock:
            found = self.users.get(login.lower())
            if found is None:
                found = User(login, self.new_id())
                self.users[login.lower()] = found
            return found

    def org(self, login: str) -> User:
        with self.lock:
            found = self.orgs.get(login.lower())
            if found is None:
                found = User(login, self.new_id())
                self.orgs[login.lower()] = found
            return found

    def add_repo(self, full_name: str, *, default_branch: str = "main",
                 private: bool = False) -> Repo:
        owner, _, name = full_name.partition("/")
        if not owner or not name:
            raise ValueError(f"repository must be 'owner/name', got {full_name!r}")
        with self.lock:
            repo = Repo(self, owner, name, default_branch=default_branch, private=private)
            self.repos[full_name.lower()] = repo
            self.org(owner)
            return repo

    def repo(self, full_name: str) -> Repo:
        """The repository, created with defaults on first use."""
        with self.lock:
            return self.repos.get(full_name.lower()) or self.add_repo(full_name)

    def repo_by_id(self, repo_id: int) -> Repo | None:
        return next((r for r in self.repos.values() if r.id == repo_id), None)

    def set_team(self, org: str, slug: str, members: Iterable[str], *,
                 pending: Iterable[str] = (), maintainers: Iterable[str] = (),
                 name: str | None = None) -> Team:
        """A team; ``pending`` were invited and have not accepted (membership ``pending``)."""
        with self.lock:
            key = (org.lower(), slug.lower())
            existing = self.teams.get(key)
            team = Team(existing.id if existing else self.new_id(), self.org(org).login, slug,
                        name or slug, [self.user(m).login for m in members],
                        [self.user(m).login for m in pending],
                        [self.user(m).login for m in maintainers])
            self.teams[key] = team
            return team

    def team_by_id(self, team_id: int) -> Team | None:
        return next((t for t in self.teams.values() if t.id == team_id), None)

    def add_installation(self, installation_id: int, account: str,
                         app_slug: str = "cvf-governance") -> Installation:
        with self.lock:
            inst = Installation(installation_id, account, app_slug)
            self.installations[installation_id] = inst
            return inst

    def set_token(self, token: str, login: str) -> None:
        """Requests with this token act as ``login`` (others act as ``default_login``)."""
        with self.lock:
            self.token_logins[token] = login

    def login_for(self, token: str | None) -> str:
        if token and token in self.token_logins:
            return self.token_logins[token]
        return self.default_login


def _file_entry(path: str, status: str, old: bytes | None,
                new: bytes | None) -> dict[str, object]:
    old_lines = old.decode("utf-8", "replace").count("\n") if old else 0
    new_lines = new.decode("utf-8", "replace").count("\n") if new else 0
    return {"filename": path, "status": status,
            "sha": blob_sha(new if new is not None else old or b""),
            "additions": max(new_lines - old_lines, 0) if status != "added" else new_lines,
            "deletions": max(old_lines - new_lines, 0) if status != "removed" else old_lines,
            "changes": abs(new_lines - old_lines) or (1 if status == "modified" else 0)}
