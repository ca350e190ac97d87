"""GitHub's JSON shapes for the simulator's records, with the simulator's own base URL.

PyGithub follows the URLs it is given and refuses any whose host or port differ from its
``base_url``, so every API URL here is built from ``base``; ``html_url``s point at
github.com as they would for real (PyGithub never requests them). Field names and
nesting follow the recorded exchanges in ``tests/fixtures/api/``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from tests.ghsim.state import (
    REACTIONS,
    CheckRunRec,
    CommentRec,
    CommitRec,
    IssueRec,
    Label,
    ReactionRec,
    Repo,
    ReviewCommentRec,
    ReviewRec,
    Team,
    User,
    WorkflowRunRec,
    blob_sha,
)

HTML = "https://github.com"
NODE_ID = "MDA6RW50aXR5MQ=="

Json = dict[str, Any]


def ts(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def user(base: str, who: User, *, org: bool = False) -> Json:
    api = f"{base}/users/{who.login}"
    return {
        "login": who.login, "id": who.id, "node_id": NODE_ID,
        "avatar_url": f"https://avatars.githubusercontent.com/u/{who.id}?v=4",
        "gravatar_id": "", "url": api, "html_url": f"{HTML}/{who.login}",
        "followers_url": f"{api}/followers", "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}", "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions", "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "Organization" if org else who.type, "site_admin": False,
    }


def org(base: str, who: User) -> Json:
    api = f"{base}/orgs/{who.login}"
    return {
        "login": who.login, "id": who.id, "node_id": NODE_ID, "url": api,
        "repos_url": f"{api}/repos", "events_url": f"{api}/events", "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues", "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{who.id}?v=4",
        "description": None, "html_url": f"{HTML}/{who.login}", "type": "Organization",
    }


_REPO_URLS = {
    "forks_url": "/forks", "keys_url": "/keys{/key_id}",
    "collaborators_url": "/collaborators{/collaborator}", "teams_url": "/teams",
    "hooks_url": "/hooks", "issue_events_url": "/issues/events{/number}",
    "events_url": "/events", "assignees_url": "/assignees{/user}",
    "branches_url": "/branches{/branch}", "tags_url": "/tags", "blobs_url": "/git/blobs{/sha}",
    "git_tags_url": "/git/tags{/sha}", "git_refs_url": "/git/refs{/sha}",
    "trees_url": "/git/trees{/sha}", "statuses_url": "/statuses/{sha}",
    "languages_url": "/languages", "stargazers_url": "/stargazers",
    "contributors_url": "/contributors", "subscribers_url": "/subscribers",
    "subscription_url": "/subscription", "commits_url": "/commits{/sha}",
    "git_commits_url": "/git/commits{/sha}", "comments_url": "/comments{/number}",
    "issue_comment_url": "/issues/comments{/number}", "contents_url": "/contents/{+path}",
    "compare_url": "/compare/{base}...{head}", "merges_url": "/merges",
    "archive_url": "/{archive_format}{/ref}", "downloads_url": "/downloads",
    "issues_url": "/issues{/number}", "pulls_url": "/pulls{/number}",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "labels_url": "/labels{/name}", "releases_url": "/releases{/id}",
    "deployments_url": "/deployments",
}


# Keys only ``GET /repos/{o}/{r}`` carries; a repository nested in another object has none.
_FULL_REPO_ONLY = ("allow_forking", "permissions", "temp_clone_token", "allow_squash_merge",
                   "allow_merge_commit", "allow_rebase_merge", "allow_auto_merge",
                   "delete_branch_on_merge", "allow_update_branch",
                   "use_squash_pr_title_as_default", "organization", "network_count",
                   "subscribers_count")


def nested_repo(base: str, r: Repo) -> Json:
    """A repository inside a pull request's ``head``/``base``."""
    data = {k: v for k, v in repo(base, r).items() if k not in _FULL_REPO_ONLY}
    data["custom_properties"] = {}
    return data


def minimal_repo(base: str, r: Repo) -> Json:
    """The short repository shape of workflow runs: identity and API URLs only."""
    full = repo(base, r)
    keep = ("id", "node_id", "name", "full_name", "private", "owner", "html_url",
            "description", "fork", "url")
    data = {k: full[k] for k in keep}
    data.update({k: full[k] for k in _REPO_URLS})
    return data


def repo(base: str, r: Repo) -> Json:
    api = f"{base}/repos/{r.full_name}"
    owner = r.world.org(r.owner)
    open_issues = sum(1 for i in r.issues.values() if i.state == "open")
    data: Json = {
        "id": r.id, "node_id": NODE_ID, "name": r.name, "full_name": r.full_name,
        "private": r.private, "owner": user(base, owner, org=True),
        "html_url": f"{HTML}/{r.full_name}", "description": None, "fork": False, "url": api,
    }
    data.update({key: api + suffix for key, suffix in _REPO_URLS.items()})
    data.update({
        "created_at": ts(r.created_at), "updated_at": ts(r.created_at),
        "pushed_at": ts(r.created_at), "git_url": f"git://github.com/{r.full_name}.git",
        "ssh_url": f"git@github.com:{r.full_name}.git",
        "clone_url": f"{HTML}/{r.full_name}.git", "svn_url": f"{HTML}/{r.full_name}",
        "homepage": None, "size": 0, "stargazers_count": 0, "watchers_count": 0,
        "language": None, "has_issues": True, "has_projects": True, "has_downloads": True,
        "has_wiki": True, "has_pages": False, "forks_count": 0, "mirror_url": None,
        "archived": False, "disabled": False, "open_issues_count": open_issues,
        "license": None, "allow_forking": True, "is_template": False,
        "web_commit_signoff_required": False, "topics": [],
        "visibility": "private" if r.private else "public", "forks": 0,
        "open_issues": open_issues, "watchers": 0, "default_branch": r.default_branch,
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True,
                        "pull": True},
        "temp_clone_token": "", "allow_squash_merge": True, "allow_merge_commit": True,
        "allow_rebase_merge": True, "allow_auto_merge": False,
        "delete_branch_on_merge": False, "allow_update_branch": False,
        "use_squash_pr_title_as_default": False, "organization": user(base, owner, org=True),
        "network_count": 0, "subscribers_count": 0,
    })
    return data


def label(base: str, r: Repo, lab: Label) -> Json:
    return {"id": lab.id, "node_id": NODE_ID,
            "url": f"{base}/repos/{r.full_name}/labels/{lab.name}", "name": lab.name,
            "color": lab.color, "default": False, "description": lab.description}


def reaction_rollup(base: str, r: Repo, path: str, subject: tuple[str, int]) -> Json:
    mine = list(r.reactions_by_subject.get(subject, {}).values())
    data: Json = {"url": f"{base}/repos/{r.full_name}/{path}/reactions",
                  "total_count": len(mine)}
    for content in REACTIONS:
        data[content] = sum(1 for x in mine if x.content == content)
    return data


def issue(base: str, r: Repo, i: IssueRec) -> Json:
    api = f"{base}/repos/{r.full_name}/issues/{i.number}"
    labels = [label(base, r, r.add_label(name)) for name in i.labels]
    kind = "pull" if i.pull else "issues"
    data: Json = {
        "url": api, "repository_url": f"{base}/repos/{r.full_name}",
        "labels_url": f"{api}/labels{{/name}}", "comments_url": f"{api}/comments",
        "events_url": f"{api}/events", "html_url": f"{HTML}/{r.full_name}/{kind}/{i.number}",
        "id": i.id, "node_id": NODE_ID, "number": i.number, "title": i.title,
        "user": user(base, r.world.user(i.user)), "labels": labels, "state": i.state,
        "locked": False, "assignee": None, "assignees": [], "milestone": None,
        "comments": len(r.comments_by_issue.get(i.number, {})),
        "created_at": ts(i.created_at), "updated_at": ts(i.updated_at),
        "closed_at": ts(i.closed_at), "author_association": _association(r, i.user),
        "active_lock_reason": None, "body": i.body,
        "reactions": reaction_rollup(base, r, f"issues/{i.number}", ("issue", i.number)),
        "timeline_url": f"{api}/timeline", "performed_via_github_app": None,
        "state_reason": i.state_reason,
    }
    if i.pull is not None:
        pulls = f"{base}/repos/{r.full_name}/pulls/{i.number}"
        data["draft"] = i.pull.draft
        data["pull_request"] = {
            "url": pulls, "html_url": f"{HTML}/{r.full_name}/pull/{i.number}",
            "diff_url": f"{HTML}/{r.full_name}/pull/{i.number}.diff",
            "patch_url": f"{HTML}/{r.full_name}/pull/{i.number}.patch",
            "merged_at": ts(i.closed_at) if i.pull.merged else None,
        }
    return data


def pull(base: str, r: Repo, i: IssueRec) -> Json:
    assert i.pull is not None
    p = i.pull
    api = f"{base}/repos/{r.full_name}/pulls/{i.number}"
    issue_api = f"{base}/repos/{r.full_name}/issues/{i.number}"
    head_repo = r.world.repo(p.head_repo) if p.head_repo.lower() != r.full_name.lower() else r
    author = user(base, r.world.user(i.user))
    return {
        "url": api, "id": i.id, "node_id": NODE_ID,
        "html_url": f"{HTML}/{r.full_name}/pull/{i.number}",
        "diff_url": f"{HTML}/{r.full_name}/pull/{i.number}.diff",
        "patch_url": f"{HTML}/{r.full_name}/pull/{i.number}.patch",
        "issue_url": issue_api, "number": i.number, "state": i.state, "locked": False,
        "title": i.title, "user": author, "body": i.body,
        "created_at": ts(i.created_at), "updated_at": ts(i.updated_at),
        "closed_at": ts(i.closed_at), "merged_at": ts(i.closed_at) if p.merged else None,
        "merge_commit_sha": None, "assignee": None, "assignees": [],
        "requested_reviewers": [user(base, r.world.user(login))
                                for login in p.requested_reviewers],
        "requested_teams": [team(base, t, r.world.org(t.org).id)
                            for t in (r.world.teams.get((r.full_name.split("/")[0].lower(),
                                                         slug.lower()))
                                      for slug in p.requested_teams) if t is not None],
        "labels": [label(base, r, r.add_label(name)) for name in i.labels],
        "milestone": None, "draft": p.draft,
        "commits_url": f"{api}/commits", "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{base}/repos/{r.full_name}/pulls/comments{{/number}}",
        "comments_url": f"{issue_api}/comments",
        "statuses_url": f"{base}/repos/{r.full_name}/statuses/{p.head_sha}",
        "head": {"label": f"{head_repo.owner}:{p.head_ref}", "ref": p.head_ref,
                 "sha": p.head_sha, "user": user(base, r.world.user(head_repo.owner)),
                 "repo": nested_repo(base, head_repo)},
        "base": {"label": f"{r.owner}:{p.base_ref}", "ref": p.base_ref,
                 "sha": _branch_sha(r, p.base_ref), "user": user(base, r.world.user(r.owner)),
                 "repo": nested_repo(base, r)},
        "_links": {"self": {"href": api},
                   "html": {"href": f"{HTML}/{r.full_name}/pull/{i.number}"},
                   "issue": {"href": issue_api}, "comments": {"href": f"{issue_api}/comments"},
                   "review_comments": {"href": f"{api}/comments"},
                   "review_comment": {
                       "href": f"{base}/repos/{r.full_name}/pulls/comments{{/number}}"},
                   "commits": {"href": f"{api}/commits"},
                   "statuses": {"href": f"{base}/repos/{r.full_name}/statuses/{p.head_sha}"}},
        "author_association": _association(r, i.user), "auto_merge": None,
        "active_lock_reason": None, "merged": p.merged,
        "mergeable": None if p.merged else True, "rebaseable": True,
        "mergeable_state": "clean", "merged_by": None,
        "comments": len(r.comments_by_issue.get(i.number, {})),
        "review_comments": sum(1 for c in r.review_comments.values()
                               if c.number == i.number),
        "maintainer_can_modify": p.maintainer_can_modify,
        "commits": 1, "additions": sum(int(str(f["additions"])) for f in p.files),
        "deletions": sum(int(str(f["deletions"])) for f in p.files),
        "changed_files": len(p.files),
    }


def pull_file(base: str, r: Repo, i: IssueRec, entry: dict[str, object]) -> Json:
    assert i.pull is not None
    name = str(entry["filename"])
    data: Json = dict(entry)
    data.update({
        "blob_url": f"{HTML}/{r.full_name}/blob/{i.pull.head_sha}/{name}",
        "raw_url": f"{HTML}/{r.full_name}/raw/{i.pull.head_sha}/{name}",
        "contents_url": f"{base}/repos/{r.full_name}/contents/{name}?ref={i.pull.head_sha}",
        "patch": "",
    })
    return data


def comment(base: str, r: Repo, c: CommentRec) -> Json:
    api = f"{base}/repos/{r.full_name}/issues/comments/{c.id}"
    issue_rec = r.issues.get(c.number)
    kind = "pull" if issue_rec is not None and issue_rec.pull else "issues"
    return {
        "url": api, "html_url": f"{HTML}/{r.full_name}/{kind}/{c.number}#issuecomment-{c.id}",
        "issue_url": f"{base}/repos/{r.full_name}/issues/{c.number}", "id": c.id,
        "node_id": NODE_ID, "user": user(base, r.world.user(c.user)),
        "created_at": ts(c.created_at), "updated_at": ts(c.updated_at),
        "author_association": _association(r, c.user), "body": c.body,
        "reactions": reaction_rollup(base, r, f"issues/comments/{c.id}", ("comment", c.id)),
        "performed_via_github_app": None,
    }


def review_comment(base: str, r: Repo, c: ReviewCommentRec) -> Json:
    api = f"{base}/repos/{r.full_name}/pulls/comments/{c.id}"
    data: Json = {
        "url": api, "pull_request_review_id": None, "id": c.id, "node_id": NODE_ID,
        "diff_hunk": "", "path": c.path, "commit_id": c.commit_id,
        "original_commit_id": c.commit_id, "user": user(base, r.world.user(c.user)),
        "body": c.body, "created_at": ts(c.created_at), "updated_at": ts(c.updated_at),
        "html_url": f"{HTML}/{r.full_name}/pull/{c.number}#discussion_r{c.id}",
        "pull_request_url": f"{base}/repos/{r.full_name}/pulls/{c.number}",
        "author_association": _association(r, c.user),
        "start_line": None, "original_start_line": None, "start_side": None, "line": 1,
        "original_line": 1, "side": "RIGHT", "position": 1, "original_position": 1,
        "_links": {"self": {"href": api},
                   "html": {"href": f"{HTML}/{r.full_name}/pull/{c.number}#discussion_r{c.id}"},
                   "pull_request": {"href": f"{base}/repos/{r.full_name}/pulls/{c.number}"}},
        "reactions": reaction_rollup(base, r, f"pulls/comments/{c.id}",
                                     ("review_comment", c.id)),
    }
    if c.in_reply_to_id is not None:
        data["in_reply_to_id"] = c.in_reply_to_id
    return data


def review(base: str, r: Repo, v: ReviewRec) -> Json:
    html = f"{HTML}/{r.full_name}/pull/{v.number}#pullrequestreview-{v.id}"
    return {
        "id": v.id, "node_id": NODE_ID, "user": user(base, r.world.user(v.user)),
        "body": v.body, "state": v.state, "html_url": html,
        "pull_request_url": f"{base}/repos/{r.full_name}/pulls/{v.number}",
        "author_association": _association(r, v.user),
        "_links": {"html": {"href": html},
                   "pull_request": {"href": f"{base}/repos/{r.full_name}/pulls/{v.number}"}},
        "submitted_at": ts(v.submitted_at), "commit_id": v.commit_id,
    }


def reaction(base: str, r: Repo, x: ReactionRec) -> Json:
    return {"id": x.id, "node_id": NODE_ID, "user": user(base, r.world.user(x.user)),
            "content": x.content, "created_at": ts(x.created_at)}


def content_file(base: str, r: Repo, path: str, ref: str, data: bytes, *,
                 with_content: bool = True) -> Json:
    sha = blob_sha(data)
    api = f"{base}/repos/{r.full_name}/contents/{path}?ref={ref}"
    git = f"{base}/repos/{r.full_name}/git/blobs/{sha}"
    html = f"{HTML}/{r.full_name}/blob/{ref}/{path}"
    out: Json = {
        "name": path.rsplit("/", 1)[-1], "path": path, "sha": sha, "size": len(data),
        "url": api, "html_url": html, "git_url": git,
        "download_url": f"https://raw.githubusercontent.com/{r.full_name}/{ref}/{path}",
        "type": "file",
    }
    if with_content:
        encoded = base64.encodebytes(data).decode("ascii")
        out.update({"content": encoded, "encoding": "base64"})
    out["_links"] = {"self": api, "git": git, "html": html}
    return out


def content_dir(base: str, r: Repo, path: str, ref: str) -> Json:
    api = f"{base}/repos/{r.full_name}/contents/{path}?ref={ref}"
    git = f"{base}/repos/{r.full_name}/git/trees/{ref}"
    html = f"{HTML}/{r.full_name}/tree/{ref}/{path}"
    return {"name": path.rsplit("/", 1)[-1], "path": path, "sha": blob_sha(path.encode()),
            "size": 0, "url": api, "html_url": html, "git_url": git, "download_url": None,
            "type": "dir", "_links": {"self": api, "git": git, "html": html}}


def commit(base: str, r: Repo, c: CommitRec, parent: str | None) -> Json:
    api = f"{base}/repos/{r.full_name}/git/commits/{c.sha}"
    person = {"name": c.author, "email": f"{c.author}@users.noreply.github.com",
              "date": ts(c.date)}
    return {
        "sha": c.sha, "node_id": NODE_ID, "url": api,
        "html_url": f"{HTML}/{r.full_name}/commit/{c.sha}", "author": person,
        "committer": person,
        "tree": {"sha": blob_sha(c.sha.encode()),
                 "url": f"{base}/repos/{r.full_name}/git/trees/{blob_sha(c.sha.encode())}"},
        "message": c.message,
        "parents": [] if parent is None else [
            {"url": f"{base}/repos/{r.full_name}/git/commits/{parent}",
             "html_url": f"{HTML}/{r.full_name}/commit/{parent}", "sha": parent}],
        "verification": {"verified": False, "reason": "unsigned", "signature": None,
                         "payload": None},
    }


def repo_commit(base: str, r: Repo, sha: str) -> Json:
    """``GET /repos/{o}/{r}/commits/{ref}``: enough for PyGithub's ``Commit``."""
    api = f"{base}/repos/{r.full_name}/commits/{sha}"
    return {"sha": sha, "node_id": NODE_ID, "url": api,
            "html_url": f"{HTML}/{r.full_name}/commit/{sha}",
            "comments_url": f"{api}/comments",
            "commit": {"message": "", "url": f"{base}/repos/{r.full_name}/git/commits/{sha}",
                       "comment_count": 0},
            "author": None, "committer": None, "parents": [], "files": []}


def check_run(base: str, r: Repo, c: CheckRunRec) -> Json:
    api = f"{base}/repos/{r.full_name}/check-runs/{c.id}"
    output = dict(c.output)
    annotations = output.pop("annotations", None) or []
    return {
        "id": c.id, "name": c.name, "node_id": NODE_ID, "head_sha": c.head_sha,
        "external_id": c.external_id, "url": api,
        "html_url": f"{HTML}/{r.full_name}/runs/{c.id}", "details_url": c.details_url,
        "status": c.status, "conclusion": c.conclusion, "started_at": ts(c.started_at),
        "completed_at": ts(c.completed_at),
        "output": {"title": output.get("title"), "summary": output.get("summary"),
                   "text": output.get("text"),
                   "annotations_count": len(annotations),  # type: ignore[arg-type]
                   "annotations_url": f"{api}/annotations"},
        "check_suite": {
            "id": c.id + 1, "node_id": NODE_ID, "head_branch": None, "head_sha": c.head_sha,
            "status": "completed" if c.status == "completed" else "queued",
            "conclusion": c.conclusion, "url": f"{base}/repos/{r.full_name}/check-suites/"
                                               f"{c.id + 1}",
            "before": None, "after": c.head_sha, "pull_requests": [], "deployment": None,
            "app": app(base, r, c.app_slug), "created_at": ts(c.started_at),
            "updated_at": ts(c.completed_at or c.started_at)},
        "app": app(base, r, c.app_slug),
        "pull_requests": [],
    }


def app(base: str, r: Repo, slug: str) -> Json:
    """The GitHub App behind a check run (``github-actions`` for a workflow token)."""
    owner = r.world.org(r.owner if slug != "github-actions" else "github")
    return {"id": 1, "slug": slug, "node_id": NODE_ID,
            "owner": user(base, owner, org=True), "name": slug, "description": "",
            "external_url": f"{HTML}/apps/{slug}", "html_url": f"{HTML}/apps/{slug}",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "permissions": {"checks": "write", "contents": "write", "issues": "write",
                            "metadata": "read", "pull_requests": "write"},
            "events": ["check_run", "issue_comment", "pull_request"]}


def team(base: str, t: Team, org_id: int) -> Json:
    api = f"{base}/organizations/{org_id}/team/{t.id}"
    return {
        "name": t.name, "id": t.id, "node_id": NODE_ID, "slug": t.slug, "description": None,
        "privacy": "closed", "notification_setting": "notifications_enabled",
        "url": api, "html_url": f"{HTML}/orgs/{t.org}/teams/{t.slug}",
        "members_url": f"{api}/members{{/member}}", "repositories_url": f"{api}/repos",
        "permission": "pull", "parent": None,
    }


def membership(base: str, t: Team, org_id: int, login: str, state: str, role: str) -> Json:
    return {"url": f"{base}/organizations/{org_id}/team/{t.id}/memberships/{login}",
            "role": role, "state": state}


def workflow_run(base: str, r: Repo, w: WorkflowRunRec) -> Json:
    api = f"{base}/repos/{r.full_name}/actions/runs/{w.id}"
    return {
        "id": w.id, "name": w.name, "node_id": NODE_ID, "head_branch": w.head_branch,
        "head_sha": w.head_sha, "path": ".github/workflows/ci.yml",
        "display_title": w.name, "run_number": w.run_number, "event": w.event,
        "status": w.status, "conclusion": w.conclusion, "workflow_id": 1,
        "url": api, "html_url": f"{HTML}/{r.full_name}/actions/runs/{w.id}",
        "created_at": ts(w.created_at), "updated_at": ts(w.updated_at),
        "run_started_at": ts(w.created_at), "run_attempt": 1,
        "actor": user(base, r.world.user(w.actor)),
        "triggering_actor": user(base, r.world.user(w.actor)),
        "jobs_url": f"{api}/jobs", "logs_url": f"{api}/logs",
        "check_suite_url": f"{base}/repos/{r.full_name}/check-suites/{w.id}",
        "artifacts_url": f"{api}/artifacts", "cancel_url": f"{api}/cancel",
        "rerun_url": f"{api}/rerun",
        "workflow_url": f"{base}/repos/{r.full_name}/actions/workflows/1",
        "pull_requests": [], "check_suite_id": w.id + 1, "check_suite_node_id": NODE_ID,
        "previous_attempt_url": None,
        "head_commit": {"id": w.head_sha, "tree_id": blob_sha(w.head_sha.encode()),
                        "message": w.name, "timestamp": ts(w.created_at),
                        "author": {"name": w.actor,
                                   "email": f"{w.actor}@users.noreply.github.com"},
                        "committer": {"name": "GitHub", "email": "noreply@github.com"}},
        "repository": minimal_repo(base, r), "head_repository": minimal_repo(base, r),
    }


def _association(r: Repo, login: str) -> str:
    if login.lower() == r.owner.lower():
        return "OWNER"
    perm = r.permissions.get(login.lower(), "none")
    if perm in ("admin", "maintain", "write", "triage"):
        return "COLLABORATOR"
    return "NONE"


def _branch_sha(r: Repo, branch: str) -> str:
    return r.branch_heads.get(branch) or blob_sha(f"{r.full_name}:{branch}".encode())
