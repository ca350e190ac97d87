"""``PyGithubAdapter``: the one ``GitHubPort`` that talks to GitHub, through PyGithub.

Reads use PyGithub's typed objects and pagination (``per_page=100``, ``lazy=True`` so
``repo.get_issue(n).get_comments()`` costs one request, not three). Every write goes
through ``_write`` — one place that logs ``(method, path, body)`` into ``stats.write_log``,
sends it (or, in a dry run, does not), and turns a 403 into ``PermissionDenied`` naming the
permission to grant. Retries and the rate-limit cap live in ``bot.github.retry``; the
request count in ``bot.github.auth.CountingAuth``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote

import requests
from github import Github, GithubException
from github.GithubException import RateLimitExceededExceedsMaxWait
from github.GithubObject import NonCompletableGithubObject, NotSet
from github.NamedUser import NamedUser
from github.PaginatedList import PaginatedList
from github.Reaction import Reaction as GhReaction
from github.WorkflowRun import WorkflowRun as GhWorkflowRun

from bot.github.auth import DEFAULT_API_URL, CountingAuth
from bot.github.conditional import EtagCache, install
from bot.github.port import (
    CallStats,
    ChangedFile,
    CheckRunOutput,
    Comment,
    FileContent,
    GitHubError,
    Issue,
    PermissionDenied,
    PullRequest,
    Reaction,
    Review,
    ReviewComment,
    TeamLookupError,
    WorkflowRun,
    WriteRecord,
)
from bot.github.retry import Sleeper, make_retry

# GitHub's own limits (see ARCHITECTURE.md): longer text is cut, with a note.
COMMENT_LIMIT = 65536
CHECK_TEXT_LIMIT = 65535
ANNOTATIONS_PER_REQUEST = 50
# Reads are not throttled: one event needs a handful, and GitHub asks only that writes
# be spaced out (secondary rate limits). Writes are spaced within one adapter — one
# delivery — which costs little because an event rarely makes more than three.
SECONDS_BETWEEN_WRITES = 0.25
DRY_RUN_SHA = "dry-run"

PERM_ISSUES = "issues: write (pull-requests: write for a pull request)"
PERM_CHECKS = "checks: write"
PERM_CONTENTS = "contents: write"
PERM_PULLS = "pull-requests: write"


class _Raw(NonCompletableGithubObject):
    """A listed item kept as GitHub's JSON. PyGithub's lazy ``Issue`` fetches the whole
    issue again when asked for a key GitHub omits (``pull_request`` on a plain issue);
    reading the dict costs nothing."""

    def _initAttributes(self) -> None:
        return None

    def _useAttributes(self, attributes: Any) -> None:
        return None


class _Conflict(Exception):
    """The file changed between our read and our write (409 or a stale sha)."""


class PyGithubAdapter:
    """One repository's facts and actions; build one per delivery (see ``GitHubFactory``)."""

    def __init__(self, repo: str, *, token: str | Callable[[], str],
                 api_url: str = DEFAULT_API_URL, bot_login: str = "cvf-governance[bot]",
                 dry_run: bool = False, attempts: int = 4, max_wait: float = 60.0,
                 sleeper: Sleeper | None = None,
                 seconds_between_writes: float | None = SECONDS_BETWEEN_WRITES,
                 timeout: int = 20, conflict_retries: int = 3,
                 stats: CallStats | None = None, etags: EtagCache | None = None) -> None:
        self.repo = repo
        self.stats = stats if stats is not None else CallStats()
        self.dry_run = dry_run
        self.api_url = api_url.rstrip("/")
        self.bot_login = bot_login
        self.max_wait = max_wait
        self.attempts = attempts
        self.conflict_retries = conflict_retries
        source: Callable[[], str] = token if callable(token) else (lambda: str(token))
        self._gh = Github(auth=CountingAuth(source, self.stats), base_url=self.api_url,
                          per_page=100, timeout=timeout, user_agent="cvf-governance",
                          retry=make_retry(attempts=attempts, max_wait=max_wait,
                                           stats=self.stats, sleeper=sleeper),
                          seconds_between_requests=None,
                          seconds_between_writes=seconds_between_writes, lazy=True)
        self._requester = self._gh.requester
        # Repeated reads go out with If-None-Match; a 304 costs no rate-limit point.
        install(self._requester, etags if etags is not None else EtagCache(), self.stats)
        self._repo = self._gh.get_repo(repo)
        self._path = f"/repos/{repo}"
        self._default_branch: str | None = None
        # Facts read once per delivery: several concerns' handlers ask for the same pull
        # request, files, comments, file contents, reviews and check runs. The bot's own
        # writes update (or drop) what they change, so a handler never reads an answer the
        # adapter already knows.
        self._memo: dict[tuple[Any, ...], Any] = {}
        # Head sha of each of this repository's branches a pull request read showed.
        self._heads: dict[str, str] = {}
        # Reactions per comment, from the comment listing's rollup (no read when none).
        self._reaction_totals: dict[int, int] = {}

    def close(self) -> None:
        """Release the HTTP connection pool (one per delivery, so it must not linger)."""
        self._gh.close()

    def __repr__(self) -> str:
        return f"PyGithubAdapter({self.repo!r}, api_url={self.api_url!r}, dry_run={self.dry_run})"

    # -- errors -----------------------------------------------------------------------
    @contextmanager
    def _errors(self, what: str, permission: str | None = None) -> Iterator[None]:
        try:
            yield
        except RateLimitExceededExceedsMaxWait as exc:
            raise GitHubError(
                f"GitHub rate limit while {what}: it would take a {exc.wait:.0f}s wait, longer "
                f"than github.retry.max_wait ({self.max_wait:.0f}s); try again after the limit "
                f"resets, or raise github.retry.max_wait", status=exc.status) from None
        except GithubException as exc:
            self._raise(exc, what, permission)
        except requests.RequestException as exc:
            raise GitHubError(f"cannot reach GitHub at {self.api_url} while {what} "
                              f"({type(exc).__name__}); check the network and "
                              f"GITHUB_API_URL / github.api_url") from None

    def _raise(self, exc: GithubException, what: str, permission: str | None) -> NoReturn:
        status = exc.status
        message = _message(exc)
        detail = f": {message}" if message else ""
        if status == 401:
            raise GitHubError(f"GitHub rejected the bot's credentials (401) while {what}; "
                              f"check the token or the App's private key", status=status) from None
        headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
        if status in (403, 429) and ("rate limit" in message.lower() or "retry-after" in headers
                                     or headers.get("x-ratelimit-remaining") == "0"):
            raise GitHubError(f"GitHub kept rate-limiting the bot while {what}, after "
                              f"{self.attempts} retries; try again later", status=status) from None
        if status == 403 and permission:
            raise PermissionDenied(
                f"GitHub refused {what} on {self.repo} (403{detail}); the bot needs the "
                f"'{permission}' permission: grant it in the GitHub App's settings, or in the "
                f"workflow's `permissions:` block", status=status) from None
        if status == 403:
            raise GitHubError(f"GitHub refused {what} on {self.repo} (403{detail}); check "
                              f"that the bot can read the repository", status=status) from None
        if status == 404:
            raise GitHubError(f"not found while {what} on {self.repo} (404); check the "
                              f"number or name, and that the bot is installed on the repository",
                              status=status) from None
        if status is not None and status >= 500:
            raise GitHubError(f"GitHub kept failing ({status}) while {what}, after "
                              f"{self.attempts} retries; try again later", status=status) from None
        raise GitHubError(f"GitHub answered {status} while {what}{detail}", status=status) from None

    # -- the write choke point ----------------------------------------------------------
    def _write(self, method: str, path: str, body: dict[str, Any] | None, *, what: str,
               permission: str, missing_ok: bool = False,
               conflict: bool = False) -> dict[str, Any]:
        self.stats.writes += 1
        self.stats.write_log.append(WriteRecord(method=method, path=path, body=body))
        if self.dry_run:
            return {}
        try:
            with self._errors(what, permission):
                try:
                    _, data = self._requester.requestJsonAndCheck(method, path, input=body)
                except GithubException as exc:
                    if missing_ok and exc.status == 404:
                        return {}
                    if conflict and _is_conflict(exc):
                        raise _Conflict() from None
                    raise
        except _Conflict:
            raise
        return data if isinstance(data, dict) else {}

    def _list(self, cls: Any, path: str, params: dict[str, Any] | None = None,
              list_item: str = "items") -> PaginatedList[Any]:
        return PaginatedList(cls, self._requester, path, params, list_item=list_item)

    def _remember(self, key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = load()
        value = self._memo[key]
        return list(value) if isinstance(value, list) else value

    def _forget(self, kind: str, number: object = None) -> None:
        for key in [k for k in self._memo
                    if k[0] == kind and (number is None or k[1] == number)]:
            del self._memo[key]

    def _is_me(self, login: str) -> bool:
        return login.lower() == self.bot_login.lower()

    # -- facts ----------------------------------------------------------------------
    def get_pull(self, number: int) -> PullRequest:
        pull: PullRequest = self._remember(("pull", number), lambda: self._read_pull(number))
        return pull

    def _read_pull(self, number: int) -> PullRequest:
        with self._errors(f"reading pull request #{number}"):
            pr = self._repo.get_pull(number)
            head_repo = pr.head.repo.full_name if pr.head.repo is not None else ""
            if head_repo.lower() == self.repo.lower():
                self._heads[pr.head.ref] = pr.head.sha
            return PullRequest(
                number=pr.number, title=pr.title or "", body=pr.body or "",
                author=_login(pr.user), state=pr.state, merged=bool(pr.merged),
                draft=bool(pr.draft), head_sha=pr.head.sha, head_ref=pr.head.ref,
                head_repo=head_repo, base_ref=pr.base.ref,
                base_repo=pr.base.repo.full_name if pr.base.repo is not None else self.repo,
                labels=tuple(label.name for label in pr.labels),
                created_at=pr.created_at, html_url=pr.html_url or "",
                maintainer_can_modify=bool(pr.maintainer_can_modify),
                requested_reviewers=tuple(_login(u) for u in pr.requested_reviewers or ()),
                requested_teams=tuple(t.slug for t in pr.requested_teams or ()))

    def list_pull_files(self, number: int) -> list[ChangedFile]:
        files: list[ChangedFile] = self._remember(("files", number),
                                                  lambda: self._read_files(number))
        return files

    def _read_files(self, number: int) -> list[ChangedFile]:
        with self._errors(f"listing the files of pull request #{number}"):
            return [ChangedFile(filename=f.filename, status=f.status,
                                previous_filename=f.previous_filename)
                    for f in self._repo.get_pull(number).get_files()]

    def get_file(self, path: str, ref: str | None = None) -> FileContent | None:
        found: FileContent | None = self._remember(("file", path, ref or ""),
                                                   lambda: self._read_file(path, ref))
        return found

    def _read_file(self, path: str, ref: str | None) -> FileContent | None:
        where = f"{path}@{ref}" if ref else path
        with self._errors(f"reading {where}"):
            try:
                content = self._repo.get_contents(path, ref=ref if ref else NotSet)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
            if isinstance(content, list):
                raise GitHubError(f"{where} is a directory, not a file")
            try:
                text = content.decoded_content.decode("utf-8")
            except UnicodeDecodeError:
                raise GitHubError(f"{where} is not UTF-8 text") from None
            return FileContent(path=path, text=text, sha=content.sha)

    def list_issue_comments(self, number: int) -> list[Comment]:
        """The comments of ``number``, read once per delivery until the bot writes a comment
        there: the next read after that asks GitHub again, so it also sees what others
        wrote meanwhile (the RFC handler's ``_settled`` relies on it)."""
        comments: list[Comment] = self._remember(("comments", number),
                                                 lambda: self._read_comments(number))
        return comments

    def _read_comments(self, number: int) -> list[Comment]:
        with self._errors(f"listing the comments of #{number}"):
            listed = list(self._repo.get_issue(number).get_comments())
        for c in listed:
            rollup = getattr(c, "_rawData", {}).get("reactions")
            if isinstance(rollup, dict) and isinstance(rollup.get("total_count"), int):
                self._reaction_totals[c.id] = rollup["total_count"]
        return [self._comment(c) for c in listed]

    def list_review_comments(self, number: int) -> list[ReviewComment]:
        with self._errors(f"listing the review comments of #{number}"):
            return [ReviewComment(id=c.id, author=_login(c.user), body=c.body or "",
                                  path=c.path or "", in_reply_to_id=c.in_reply_to_id,
                                  created_at=c.created_at)
                    for c in self._repo.get_pull(number).get_review_comments()]

    def list_reviews(self, number: int) -> list[Review]:
        reviews: list[Review] = self._remember(("reviews", number),
                                               lambda: self._read_reviews(number))
        return reviews

    def _read_reviews(self, number: int) -> list[Review]:
        with self._errors(f"listing the reviews of #{number}"):
            return [Review(id=r.id, author=_login(r.user), state=r.state,
                           commit_id=r.commit_id or "", submitted_at=r.submitted_at)
                    for r in self._repo.get_pull(number).get_reviews()]

    def list_issue_reactions(self, number: int) -> list[Reaction]:
        with self._errors(f"listing the reactions on #{number}"):
            return [_reaction(r) for r in self._list(
                GhReaction, f"{self._path}/issues/{number}/reactions")]

    def list_comment_reactions(self, comment_id: int) -> list[Reaction]:
        if self._reaction_totals.get(comment_id) == 0:
            return []  # the comment listing of this delivery showed it has none
        with self._errors(f"listing the reactions on comment {comment_id}"):
            return [_reaction(r) for r in self._list(
                GhReaction, f"{self._path}/issues/comments/{comment_id}/reactions")]

    def team_members(self, org: str, team_slug: str) -> list[str]:
        members: list[str] = self._remember(("team", org.lower(), team_slug.lower()),
                                            lambda: self._read_team(org, team_slug))
        return members

    def _read_team(self, org: str, team_slug: str) -> list[str]:
        path = f"/orgs/{quote(org)}/teams/{quote(team_slug)}/members"
        try:
            with self._errors(f"reading team {org}/{team_slug}"):
                return sorted(u.login for u in self._list(NamedUser, path))
        except GitHubError as exc:
            raise self._team_error(org, team_slug, exc) from None

    def is_team_member(self, org: str, team_slug: str, login: str) -> bool:
        key = ("member", org.lower(), team_slug.lower(), login.lower())
        member: bool = self._remember(key, lambda: self._read_member(org, team_slug, login))
        return member

    def _read_member(self, org: str, team_slug: str, login: str) -> bool:
        team = f"/orgs/{quote(org)}/teams/{quote(team_slug)}"
        try:
            with self._errors(f"reading team {org}/{team_slug}"):
                try:
                    _, data = self._requester.requestJsonAndCheck(
                        "GET", f"{team}/memberships/{quote(login)}")
                    return isinstance(data, dict) and data.get("state") == "active"
                except GithubException as exc:
                    if exc.status != 404:
                        raise
                # 404 means "not a member" or "no such team": only the team tells which.
                self._requester.requestJsonAndCheck("GET", team)
                return False
        except GitHubError as exc:
            raise self._team_error(org, team_slug, exc) from None

    def _team_error(self, org: str, team_slug: str, exc: GitHubError) -> TeamLookupError:
        return TeamLookupError(
            f"cannot read the members of team @{org}/{team_slug} ({exc.status}); check the "
            f"team name in .github/cvf.yml and that the bot has the 'members: read' "
            f"organization permission (nobody is counted as a member meanwhile)",
            status=exc.status)

    def collaborator_permission(self, login: str) -> str:
        permission: str = self._remember(("permission", login.lower()),
                                         lambda: self._read_permission(login))
        return permission

    def _read_permission(self, login: str) -> str:
        with self._errors(f"reading the permission of {login}"):
            try:
                _, data = self._requester.requestJsonAndCheck(
                    "GET", f"{self._path}/collaborators/{quote(login)}/permission")
            except GithubException as exc:
                if exc.status == 404:
                    return "none"
                raise
            return str((data or {}).get("permission", "none"))

    def search_open_pulls(self, label: str) -> list[int]:
        # The issues list filtered by label is exact and immediate; the search API lags.
        with self._errors(f"listing open pull requests labelled {label!r}"):
            issues = self._list(_Raw, f"{self._path}/issues", {"state": "open", "labels": label})
            return sorted(int(i.raw_data["number"]) for i in issues
                          if i.raw_data.get("pull_request"))

    def find_issue(self, marker: str) -> Issue | None:
        with self._errors("looking for the bot's tracking issue"):
            issues = self._list(_Raw, f"{self._path}/issues",
                                {"state": "open", "creator": self.bot_login})
            for item in issues:
                i = item.raw_data
                author = str((i.get("user") or {}).get("login", ""))
                body = str(i.get("body") or "")
                if not i.get("pull_request") and self._is_me(author) and body.startswith(marker):
                    return Issue(number=int(i["number"]), title=str(i.get("title") or ""),
                                 body=body, state=str(i.get("state", "open")),
                                 labels=tuple(str(lb["name"]) for lb in i.get("labels", [])),
                                 author=author)
        return None

    def list_workflow_runs(self, since: datetime | None = None) -> list[WorkflowRun]:
        params = {"created": f">={since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"} if since else None
        with self._errors("listing workflow runs"):
            runs = self._list(GhWorkflowRun, f"{self._path}/actions/runs", params,
                              list_item="workflow_runs")
            return [WorkflowRun(id=r.id, name=r.name or "", conclusion=r.conclusion,
                                status=r.status, created_at=r.created_at,
                                updated_at=r.updated_at, head_sha=r.head_sha or "",
                                event=r.event or "", actor=_login(r.actor),
                                url=r.html_url or "")
                    for r in runs]

    def list_updated_open(self, since: datetime) -> list[tuple[int, bool]]:
        """One listing, ``GET /issues?state=open&since=…`` (it holds pull requests too)."""
        params = {"state": "open", "since": f"{since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"}
        with self._errors("listing the recently updated issues and pull requests"):
            return [(int(item.raw_data["number"]), bool(item.raw_data.get("pull_request")))
                    for item in self._list(_Raw, f"{self._path}/issues", params)]

    def default_branch(self) -> str:
        if self._default_branch is None:
            with self._errors("reading the repository"):
                self._default_branch = str(self._repo.default_branch)
        return self._default_branch

    # -- actions --------------------------------------------------------------------
    def create_comment(self, number: int, body: str) -> Comment:
        text = _cut(body, COMMENT_LIMIT)
        data = self._write("POST", f"{self._path}/issues/{number}/comments", {"body": text},
                           what=f"commenting on #{number}", permission=PERM_ISSUES)
        created = self._json_comment(data) if data else self._planned_comment(0, text)
        if data:
            self._reaction_totals[created.id] = 0
            self._forget("comments", number)
        return created

    def upsert_sticky_comment(self, number: int, marker: str, body: str) -> Comment:
        """The bot's one comment starting with ``marker``: created, edited, or left alone.

        Only a comment *authored by the bot* whose text *starts with* the marker counts, so
        a user quoting the marker (or the bot quoting a user) is never taken for it.
        """
        text = _cut(_with_marker(marker, body), COMMENT_LIMIT)
        for existing in self.list_issue_comments(number):
            if not (self._is_me(existing.author) and existing.body.startswith(marker)):
                continue
            if _same(existing.body, text):
                return existing
            data = self._write("PATCH", f"{self._path}/issues/comments/{existing.id}",
                               {"body": text}, what=f"updating the bot's comment on #{number}",
                               permission=PERM_ISSUES)
            if not data:
                return self._planned_comment(existing.id, text)
            self._forget("comments", number)
            return self._json_comment(data)
        created = self.create_comment(number, text)
        return created if self.dry_run else self._one_sticky(number, marker, text, created)

    def _one_sticky(self, number: int, marker: str, text: str, created: Comment) -> Comment:
        """Two deliveries racing may both have created the comment: keep the oldest only.

        One extra read, paid only when a sticky comment is first created. Every racer
        converges on the same survivor (lowest id) and deletes the rest (a 404 from the
        other racer's delete is fine), so the thread never shows the status twice.
        """
        self._forget("comments", number)  # a racer's comment is news only GitHub has
        mine = [c for c in self.list_issue_comments(number)
                if self._is_me(c.author) and c.body.startswith(marker)]
        if len(mine) <= 1:
            return created
        keep = min(mine, key=lambda c: c.id)
        for extra in mine:
            if extra.id != keep.id:
                self._write("DELETE", f"{self._path}/issues/comments/{extra.id}", None,
                            what=f"removing a duplicate bot comment on #{number}",
                            permission=PERM_ISSUES, missing_ok=True)
                self._forget("comments", number)
        if _same(keep.body, text):
            return keep
        data = self._write("PATCH", f"{self._path}/issues/comments/{keep.id}", {"body": text},
                           what=f"updating the bot's comment on #{number}",
                           permission=PERM_ISSUES)
        if not data:
            return keep
        self._forget("comments", number)
        return self._json_comment(data)

    def add_comment_reaction(self, comment_id: int, content: str) -> None:
        self._reaction_totals.pop(comment_id, None)  # no longer known to be none
        self._write("POST", f"{self._path}/issues/comments/{comment_id}/reactions",
                    {"content": content}, what=f"reacting to comment {comment_id}",
                    permission=PERM_ISSUES)

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        if not labels:
            return
        self._write("POST", f"{self._path}/issues/{number}/labels", {"labels": list(labels)},
                    what=f"labelling #{number}", permission=PERM_ISSUES)
        self._relabel(number, lambda held: (*held, *(x for x in labels if x.lower() not in
                                                     {h.lower() for h in held})))

    def request_reviewers(self, number: int, users: Sequence[str],
                          teams: Sequence[str]) -> None:
        """Ask ``users`` and ``teams`` (slugs of the repository's organisation) to review."""
        if not users and not teams:
            return
        self._forget("pull", number)
        self._write("POST", f"{self._path}/pulls/{number}/requested_reviewers",
                    {"reviewers": list(users), "team_reviewers": list(teams)},
                    what=f"requesting reviews on #{number}", permission=PERM_PULLS)

    def remove_label(self, number: int, label: str) -> None:
        self._write("DELETE", f"{self._path}/issues/{number}/labels/{quote(label, safe='')}",
                    None, what=f"removing label {label!r} from #{number}",
                    permission=PERM_ISSUES, missing_ok=True)
        self._relabel(number, lambda held: tuple(x for x in held if x.lower() != label.lower()))

    def _relabel(self, number: int,
                 change: Callable[[tuple[str, ...]], tuple[str, ...]]) -> None:
        """The bot's own label change applied to the pull request already read (known: no
        need to read it again)."""
        pull = self._memo.get(("pull", number))
        if pull is not None:
            self._memo[("pull", number)] = replace(pull, labels=change(pull.labels))

    def set_check_run(self, head_sha: str, name: str, *, status: str,
                      conclusion: str | None, output: CheckRunOutput) -> int:
        """Create the check run ``name`` on ``head_sha``, or update the one already there;
        a run that already shows exactly this is left alone (no write)."""
        runs = [r for r in self._check_runs(head_sha) if r.get("name") == name]
        annotations = list(output.annotations)
        first = annotations[:ANNOTATIONS_PER_REQUEST]
        body: dict[str, Any] = {"name": name, "status": status,
                                "output": _check_output(output, first)}
        if conclusion is not None:
            body["conclusion"] = conclusion
        what = f"setting check run {name!r}"
        if runs and _shows(runs[0], body, len(annotations)):
            return int(runs[0]["id"])
        if runs:
            run_id = int(runs[0]["id"])
            self._write("PATCH", f"{self._path}/check-runs/{run_id}", body, what=what,
                        permission=PERM_CHECKS)
        else:
            created = self._write("POST", f"{self._path}/check-runs",
                                  {**body, "head_sha": head_sha}, what=what,
                                  permission=PERM_CHECKS)
            run_id = int(created.get("id", 0))
        # GitHub takes 50 annotations per request; the rest are appended in further updates.
        for start in range(ANNOTATIONS_PER_REQUEST, len(annotations), ANNOTATIONS_PER_REQUEST):
            batch = annotations[start:start + ANNOTATIONS_PER_REQUEST]
            self._write("PATCH", f"{self._path}/check-runs/{run_id}",
                        {"output": _check_output(output, batch)}, what=what,
                        permission=PERM_CHECKS)
        shown = {**body, "id": run_id, "output": {**body["output"],
                                                  "annotations_count": len(annotations)}}
        self._memo[("checks", head_sha)] = [shown, *(r for r in self._check_runs(head_sha)
                                                     if r.get("name") != name)]
        return run_id

    def _check_runs(self, head_sha: str) -> list[dict[str, Any]]:
        """The latest run of every check on ``head_sha``: one listing serves every check
        the handlers set on that commit during the delivery."""
        runs: list[dict[str, Any]] = self._remember(("checks", head_sha),
                                                    lambda: self._read_check_runs(head_sha))
        return runs

    def _read_check_runs(self, head_sha: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        with self._errors(f"reading check runs of {head_sha[:7]}"):
            for page in range(1, 11):
                _, data = self._requester.requestJsonAndCheck(
                    "GET", f"{self._path}/commits/{quote(head_sha)}/check-runs",
                    parameters={"filter": "latest", "per_page": 100, "page": page})
                listed = (data or {}).get("check_runs", [])
                runs += listed
                if len(runs) >= int((data or {}).get("total_count", 0)) or len(listed) < 100:
                    break
        return runs

    def update_file(self, path: str, branch: str, change: Callable[[str | None], str | None],
                    message: str) -> str | None:
        """Commit ``change(current text)`` to ``path`` on ``branch``; None when nothing changes.

        ``change`` gets the text (None if the file is absent) and returns the new text, or
        None to leave the file alone. The PUT carries the blob sha read just before, so a
        concurrent commit makes GitHub answer 409; the file is then read again and
        ``change`` re-applied to the new text, up to ``conflict_retries`` times.
        """
        for attempt in range(self.conflict_retries + 1):
            current = self._file_on_branch(path, branch) if attempt == 0 \
                else self._read_file(path, branch)
            old = current.text if current else None
            new = change(old)
            if new is None or new == old:
                return None
            body: dict[str, Any] = {"message": message, "branch": branch,
                                    "content": base64.b64encode(new.encode("utf-8")).decode()}
            if current is not None:
                body["sha"] = current.sha
            # A commit may move a pull request's head: its facts must be read again.
            self._forget("pull")
            self._forget("files")
            try:
                data = self._write("PUT", f"{self._path}/contents/{quote(path)}", body,
                                   what=f"committing {path} to {branch}",
                                   permission=PERM_CONTENTS, conflict=True)
            except _Conflict:
                continue
            if self.dry_run:
                return DRY_RUN_SHA
            sha = str((data.get("commit") or {}).get("sha", ""))
            blob = str((data.get("content") or {}).get("sha", ""))
            # What the bot just committed is known: the file there, and no check runs yet.
            self._forget("file", path)
            self._memo[("file", path, sha)] = FileContent(path=path, text=new, sha=blob)
            self._memo[("checks", sha)] = []
            self._heads[branch] = sha
            return sha
        raise GitHubError(f"{path} on {branch} kept changing while the bot tried to commit "
                          f"({self.conflict_retries + 1} conflicts); try again", status=409)

    def _file_on_branch(self, path: str, branch: str) -> FileContent | None:
        """``path`` on ``branch``; when a pull request read in this delivery has that branch
        of this repository as its head, the file read at its head sha is the same answer.
        (Had the branch moved since, the PUT's blob sha fails with 409 and it is read again.)
        """
        head = self._heads.get(branch)
        if head is not None and ("file", path, head) in self._memo:
            known: FileContent | None = self._memo[("file", path, head)]
            return known
        return self._read_file(path, branch)

    def open_or_update_issue(self, marker: str, title: str, body: str,
                             labels: Sequence[str] = ()) -> Issue:
        text = _cut(_with_marker(marker, body), COMMENT_LIMIT)
        existing = self.find_issue(marker)
        if existing is not None:
            changes: dict[str, Any] = {}
            if existing.title != title:
                changes["title"] = title
            if not _same(existing.body, text):
                changes["body"] = text
            if changes:
                self._write("PATCH", f"{self._path}/issues/{existing.number}", changes,
                            what=f"updating issue #{existing.number}", permission=PERM_ISSUES)
            missing = [label for label in labels if label not in existing.labels]
            self.add_labels(existing.number, missing)
            return Issue(number=existing.number, title=title, body=text, state=existing.state,
                         labels=tuple(dict.fromkeys([*existing.labels, *missing])),
                         author=existing.author)
        data = self._write("POST", f"{self._path}/issues",
                           {"title": title, "body": text, "labels": list(labels)},
                           what="opening an issue", permission=PERM_ISSUES)
        return Issue(number=int(data.get("number", 0)), title=title, body=text, state="open",
                     labels=tuple(labels), author=self.bot_login)

    def close_issue(self, number: int, comment: str | None = None) -> None:
        """Close ``number`` (with a last comment); an issue already closed is left alone."""
        with self._errors(f"reading issue #{number}"):
            _, data = self._requester.requestJsonAndCheck("GET", f"{self._path}/issues/{number}")
        if (data or {}).get("state") == "closed":
            return
        if comment:
            self.create_comment(number, comment)
        self._forget("pull", number)
        self._write("PATCH", f"{self._path}/issues/{number}", {"state": "closed"},
                    what=f"closing #{number}", permission=PERM_ISSUES)

    # -- conversions ------------------------------------------------------------------
    def _comment(self, c: Any) -> Comment:
        login = _login(c.user)
        is_bot = self._is_me(login) or getattr(c.user, "type", "") == "Bot"
        return Comment(id=c.id, author=login, body=c.body or "", created_at=c.created_at,
                       updated_at=c.updated_at or c.created_at, author_is_bot=is_bot,
                       html_url=c.html_url or "")

    def _json_comment(self, data: dict[str, Any]) -> Comment:
        c = _comment_json(data)
        return replace(c, author_is_bot=c.author_is_bot or self._is_me(c.author))

    def _planned_comment(self, comment_id: int, text: str) -> Comment:
        now = datetime.now(UTC)
        return Comment(id=comment_id, author=self.bot_login, body=text, created_at=now,
                       updated_at=now, author_is_bot=True)


def _login(user: Any) -> str:
    return str(user.login) if user is not None and user.login else "ghost"


def _reaction(r: Any) -> Reaction:
    return Reaction(id=r.id, user=_login(r.user), content=r.content, created_at=r.created_at)


def _comment_json(data: dict[str, Any]) -> Comment:
    user = data.get("user") or {}
    created = _when(data.get("created_at"))
    return Comment(id=int(data.get("id", 0)), author=str(user.get("login", "")),
                   body=str(data.get("body", "")), created_at=created,
                   updated_at=_when(data.get("updated_at")) if data.get("updated_at") else created,
                   author_is_bot=user.get("type") == "Bot", html_url=str(data.get("html_url", "")))


def _when(value: Any) -> datetime:
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.now(UTC)


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        return str(data.get("message", ""))
    return ""


def _is_conflict(exc: GithubException) -> bool:
    if exc.status == 409:
        return True
    # Creating a file someone else just created: 422 "sha" wasn't supplied.
    return exc.status == 422 and "sha" in _message(exc).lower()


def _with_marker(marker: str, body: str) -> str:
    return body if body.startswith(marker) else f"{marker}\n{body}"


def _same(a: str, b: str) -> bool:
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = "\n\n… (cut: the full text is longer than GitHub allows)"
    return text[: limit - len(note)] + note


def _shows(run: dict[str, Any], body: dict[str, Any], annotations: int) -> bool:
    """Whether the listed ``run`` already shows what ``body`` would set."""
    shown, wanted = run.get("output") or {}, body["output"]
    return (run.get("status") == body["status"] and run.get("conclusion") == body.get("conclusion")
            and all((shown.get(k) or "") == (wanted.get(k) or "")
                    for k in ("title", "summary", "text"))
            and int(shown.get("annotations_count") or 0) == annotations)


def _check_output(output: CheckRunOutput, annotations: list[dict[str, object]]) -> dict[str, Any]:
    out: dict[str, Any] = {"title": output.title,
                           "summary": _cut(output.summary, CHECK_TEXT_LIMIT)}
    if output.text:
        out["text"] = _cut(output.text, CHECK_TEXT_LIMIT)
    if annotations:
        out["annotations"] = annotations
    return out
