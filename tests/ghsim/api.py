"""The REST endpoints the simulator answers, one small function per endpoint.

Each handler gets a ``Ctx`` (the world, the request, the base URL) and returns a
``Reply`` or a ``Page`` (a list the server paginates). Status codes and error bodies
follow GitHub: 201 on create, 204 on delete, 404 ``Not Found``, 422 ``Validation Failed``
with an ``errors`` list, 409 when a contents write names a stale blob sha.
"""

from __future__ import annotations

import base64
import binascii
import operator
import re
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from tests.ghsim import render
from tests.ghsim.state import (
    PERMISSIONS,
    REACTIONS,
    CheckRunRec,
    CommentRec,
    IssueRec,
    Repo,
    ReviewCommentRec,
    ReviewRec,
    Team,
    TokenGrant,
    World,
    blob_sha,
)

DOCS = "https://docs.github.com/rest"
COMMENT_LIMIT = 65_536
CHECK_TEXT_LIMIT = 65_535
ANNOTATIONS_PER_REQUEST = 50
Json = Any


@dataclass
class Reply:
    status: int = 200
    body: Json = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a non-JSON body (raw file content)


@dataclass
class Page:
    """A list the server cuts into pages; only the page sent is rendered (with ``render``),
    so listing a big repository stays cheap. ``key`` wraps the page as
    ``{total_count, key: [...]}`` (search, check runs, workflow runs)."""

    items: list[Any]
    render: Callable[[Any], Json] | None = None
    key: str | None = None
    extra: dict[str, Json] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, errors: list[Json] | None = None,
                 docs: str = DOCS) -> None:
        super().__init__(message)
        self.status = status
        self.body: Json = {"message": message}
        if errors is not None:
            self.body["errors"] = errors
        self.body["documentation_url"] = docs


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def invalid(resource: str, field_name: str, code: str = "invalid",
            message: str | None = None) -> ApiError:
    error: Json = {"resource": resource, "code": code, "field": field_name}
    if message:
        error["message"] = message
    return ApiError(422, "Validation Failed", errors=[error])


@dataclass
class Ctx:
    world: World
    base: str
    method: str
    path: str
    query: dict[str, str]
    body: Json
    headers: dict[str, str]  # lower-case names
    token: str | None
    login: str

    def repo(self, owner: str, name: str) -> Repo:
        found = self.world.repos.get(f"{owner}/{name}".lower())
        if found is None:
            raise not_found()
        return found

    def issue(self, r: Repo, number: str) -> IssueRec:
        found = r.issues.get(int(number))
        if found is None:
            raise not_found()
        return found

    def pull(self, r: Repo, number: str) -> IssueRec:
        found = self.issue(r, number)
        if found.pull is None:
            raise not_found()
        return found

    def field(self, name: str, default: Json = None) -> Json:
        return self.body.get(name, default) if isinstance(self.body, dict) else default

    def app_slug(self) -> str:
        grant = self.world.grants.get(self.token or "")
        if grant is not None:
            return self.world.installations[grant.installation_id].app_slug
        return "github-actions"


Handler = Callable[..., "Reply | Page"]
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []
REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        ROUTES.append((method, re.compile(pattern.replace("{REPO}", REPO) + r"/?"), func))
        return func
    return register


def find_route(method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
    """The handler for a request, or ``None``; raises 404-vs-405 the way GitHub does
    (GitHub answers 404 for both)."""
    for verb, pattern, func in ROUTES:
        if verb == method:
            match = pattern.fullmatch(path)
            if match:
                return func, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


# -- meta ------------------------------------------------------------------------------
@route("GET", "/rate_limit")
def get_rate_limit(ctx: Ctx) -> Reply:
    # The server fills in the numbers; this endpoint itself is not counted.
    return Reply(200, {})


@route("GET", "/user")
def get_authenticated_user(ctx: Ctx) -> Reply:
    if ctx.token in ctx.world.grants:
        raise ApiError(403, "Resource not accessible by integration")
    return Reply(200, render.user(ctx.base, ctx.world.user(ctx.login)))


@route("GET", "/users/(?P<login>[^/]+)")
def get_user(ctx: Ctx, login: str) -> Reply:
    return Reply(200, render.user(ctx.base, ctx.world.user(login)))


# -- app installations -------------------------------------------------------------------
def _require_app_jwt(ctx: Ctx) -> None:
    """App endpoints take the app's JSON web token, not a user or installation token."""
    auth = ctx.headers.get("authorization", "")
    if not auth.lower().startswith("bearer ") or auth.count(".") != 2:
        raise ApiError(401, "A JSON web token could not be decoded")


@route("GET", r"/app/installations")
def list_installations(ctx: Ctx) -> Page:
    _require_app_jwt(ctx)
    found = [ctx.world.installations[key] for key in sorted(ctx.world.installations)]
    return Page(found, lambda inst: _installation_json(ctx, inst.id))


@route("GET", r"/installation/repositories")
def list_installation_repositories(ctx: Ctx) -> Page:
    grant = ctx.world.grants.get(ctx.token or "")
    if grant is None:
        raise ApiError(403, "This endpoint requires an installation access token")
    account = ctx.world.installations[grant.installation_id].account.lower()
    found = sorted((r for r in ctx.world.repos.values() if r.owner.lower() == account),
                   key=lambda r: r.name.lower())
    return Page(found, lambda r: render.repo(ctx.base, r), key="repositories",
                extra={"repository_selection": "all"})


@route("POST", r"/app/installations/(?P<inst>\d+)/access_tokens")
def create_installation_token(ctx: Ctx, inst: str) -> Reply:
    _require_app_jwt(ctx)
    installation = ctx.world.installations.get(int(inst))
    if installation is None:
        raise not_found()
    token = "ghs_" + secrets.token_hex(18)
    expires = ctx.world.now() + ctx.world.token_ttl
    ctx.world.grants[token] = TokenGrant(token, installation.id, expires)
    ctx.world.token_logins[token] = f"{installation.app_slug}[bot]"
    return Reply(201, {"token": token, "expires_at": render.ts(expires),
                       "permissions": {"checks": "write", "contents": "write",
                                       "issues": "write", "pull_requests": "write",
                                       "members": "read", "metadata": "read"},
                       "repository_selection": "all"})


def _installation_json(ctx: Ctx, installation_id: int) -> Json:
    inst = ctx.world.installations[installation_id]
    account = ctx.world.org(inst.account)
    return {"id": inst.id, "account": render.user(ctx.base, account, org=True),
            "app_id": 1, "app_slug": inst.app_slug, "target_type": "Organization",
            "target_id": account.id, "repository_selection": "all",
            "access_tokens_url": f"{ctx.base}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{ctx.base}/installation/repositories",
            "html_url": f"https://github.com/settings/installations/{inst.id}",
            "permissions": {}, "events": [], "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z", "single_file_name": None}


@route("GET", r"/app/installations/(?P<inst>\d+)")
def get_installation(ctx: Ctx, inst: str) -> Reply:
    if int(inst) not in ctx.world.installations:
        raise not_found()
    return Reply(200, _installation_json(ctx, int(inst)))


@route("GET", "{REPO}/installation")
def get_repo_installation(ctx: Ctx, owner: str, name: str) -> Reply:
    ctx.repo(owner, name)
    for inst in ctx.world.installations.values():
        if inst.account.lower() == owner.lower():
            return Reply(200, _installation_json(ctx, inst.id))
    raise not_found()


@route("POST", r"/app-manifests/(?P<code>[^/]+)/conversions")
def create_app_from_manifest(ctx: Ctx, code: str) -> Reply:
    """``apps/create-from-manifest``: the one-time code from the manifest flow's redirect
    becomes the App, with its credentials (the only time GitHub shows the key). A code
    works once; an unknown or used one is 404."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    found = ctx.world.manifest_codes.pop(code, None)
    if found is None:
        raise not_found()
    owner_login, manifest = found
    name = str(manifest.get("name") or "")
    if not name or not isinstance(manifest.get("hook_attributes", {}), dict):
        raise invalid("Integration", "name", "missing_field")
    app_id = ctx.world.new_id()
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode("ascii")
    now = render.ts(ctx.world.now())
    owner = ctx.world.user(owner_login)
    return Reply(201, {
        "id": app_id, "slug": slug, "node_id": f"A_kwDO{app_id:08d}", "name": name,
        "client_id": f"Iv1.{secrets.token_hex(8)}", "client_secret": secrets.token_hex(20),
        "webhook_secret": secrets.token_hex(20), "pem": pem,
        "owner": render.user(ctx.base, owner),
        "description": manifest.get("description"),
        "external_url": manifest.get("url") or "",
        "html_url": f"https://github.com/apps/{slug}",
        "created_at": now, "updated_at": now,
        "permissions": dict(manifest.get("default_permissions") or {}),
        "events": list(manifest.get("default_events") or []),
        "installations_count": 0})


# -- repository ------------------------------------------------------------------------
@route("GET", "{REPO}")
def get_repo(ctx: Ctx, owner: str, name: str) -> Reply:
    return Reply(200, render.repo(ctx.base, ctx.repo(owner, name)))


@route("GET", r"{REPO}/collaborators/(?P<login>[^/]+)/permission")
def get_permission(ctx: Ctx, owner: str, name: str, login: str) -> Reply:
    r = ctx.repo(owner, name)
    role = r.permissions.get(login.lower(), "none")
    legacy = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
              "read": "read", "none": "none"}[role]
    return Reply(200, {"permission": legacy, "role_name": role,
                       "user": render.user(ctx.base, ctx.world.user(login))})


@route("GET", r"{REPO}/collaborators/(?P<login>[^/]+)")
def check_collaborator(ctx: Ctx, owner: str, name: str, login: str) -> Reply:
    r = ctx.repo(owner, name)
    if r.permissions.get(login.lower(), "none") == "none":
        raise not_found()
    return Reply(204)


@route("GET", "{REPO}/collaborators")
def list_collaborators(ctx: Ctx, owner: str, name: str) -> Page:
    r = ctx.repo(owner, name)
    items = []
    for login, role in sorted(r.permissions.items()):
        if role == "none":
            continue
        data = render.user(ctx.base, ctx.world.user(login))
        rank = PERMISSIONS.index(role)
        data["permissions"] = {"admin": rank <= 0, "maintain": rank <= 1, "push": rank <= 2,
                               "triage": rank <= 3, "pull": rank <= 4}
        data["role_name"] = role
        items.append(data)
    return Page(items)


# -- contents --------------------------------------------------------------------------
def _ref(ctx: Ctx, r: Repo) -> str:
    return ctx.query.get("ref") or r.default_branch


@route("GET", r"{REPO}/contents(?:/(?P<path>.*))?")
def get_contents(ctx: Ctx, owner: str, name: str, path: str | None = None) -> Reply:
    r = ctx.repo(owner, name)
    ref = _ref(ctx, r)
    tree = r.files.get(ref)
    if tree is None:
        raise ApiError(404, f"No commit found for the ref {ref}",
                       docs="https://docs.github.com/rest/repos/contents#get-repository-content")
    path = (path or "").strip("/")
    data = tree.get(path)
    if data is not None:
        if "raw" in ctx.headers.get("accept", ""):
            return Reply(200, raw=data,
                         headers={"Content-Type": "application/vnd.github.v3.raw; "
                                                  "charset=utf-8"})
        return Reply(200, render.content_file(ctx.base, r, path, ref, data))
    prefix = f"{path}/" if path else ""
    entries: dict[str, Json] = {}
    for file_path, blob in sorted(tree.items()):
        if not file_path.startswith(prefix):
            continue
        rest = file_path[len(prefix):]
        head, sep, _ = rest.partition("/")
        child = prefix + head
        if child in entries:
            continue
        entries[child] = (render.content_dir(ctx.base, r, child, ref) if sep else
                          render.content_file(ctx.base, r, child, ref, blob,
                                              with_content=False))
    if not entries:
        raise ApiError(404, "Not Found",
                       docs="https://docs.github.com/rest/repos/contents#get-repository-content")
    return Reply(200, list(entries.values()))


@route("PUT", r"{REPO}/contents/(?P<path>.+)")
def put_contents(ctx: Ctx, owner: str, name: str, path: str) -> Reply:
    r = ctx.repo(owner, name)
    docs = "https://docs.github.com/rest/repos/contents#create-or-update-file-contents"
    for required in ("message", "content"):
        if ctx.field(required) is None:
            raise ApiError(422, f'Invalid request.\n\n"{required}" wasn\'t supplied.',
                           docs=docs)
    try:
        data = base64.b64decode(str(ctx.field("content")), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "content is not valid Base64", docs=docs) from exc
    branch = str(ctx.field("branch") or r.default_branch)
    if branch not in r.files:
        raise ApiError(404, f"Branch {branch} not found", docs=docs)
    r.apply_concurrent_edit(path, branch)
    tree = r.files[branch]
    current = tree.get(path)
    given = ctx.field("sha")
    if current is not None and given is None:
        raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.', docs=docs)
    if given is not None and (current is None or blob_sha(current) != given):
        raise ApiError(409, f"{path} does not match {given}", docs=docs)
    parent = r.branch_heads.get(branch)
    commit = r.commit_file(path, data, branch, str(ctx.field("message")), ctx.login)
    return Reply(201 if current is None else 200, {
        "content": render.content_file(ctx.base, r, path, branch, data, with_content=False),
        "commit": render.commit(ctx.base, r, commit, parent)})


@route("GET", r"{REPO}/commits/(?P<ref>[^/]+)")
def get_commit(ctx: Ctx, owner: str, name: str, ref: str) -> Reply:
    r = ctx.repo(owner, name)
    known = ref in r.files or any(c.sha == ref for c in r.commits) or \
        re.fullmatch(r"[0-9a-f]{40}", ref) is not None
    if not known:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    return Reply(200, render.repo_commit(ctx.base, r, ref))


# -- issues ----------------------------------------------------------------------------
def _label_filter(ctx: Ctx) -> list[str]:
    raw = ctx.query.get("labels", "")
    return [x.strip().lower() for x in raw.split(",") if x.strip()]


@route("GET", "{REPO}/issues")
def list_issues(ctx: Ctx, owner: str, name: str) -> Page:
    r = ctx.repo(owner, name)
    state = ctx.query.get("state", "open")
    labels = _label_filter(ctx)
    creator = ctx.query.get("creator", "").lower()
    since = _since(ctx)
    found = [i for i in r.issues.values()
             if (state == "all" or i.state == state)
             and all(x in (n.lower() for n in i.labels) for x in labels)
             and (not creator or i.user.lower() == creator)
             and (since is None or i.updated_at >= since)]
    found.sort(key=lambda i: (i.created_at, i.number),
               reverse=ctx.query.get("direction", "desc") == "desc")
    return Page(list(found), lambda i: render.issue(ctx.base, r, i))


@route("POST", "{REPO}/issues")
def create_issue(ctx: Ctx, owner: str, name: str) -> Reply:
    r = ctx.repo(owner, name)
    title = ctx.field("title")
    if not title:
        raise invalid("Issue", "title", "missing_field")
    body = ctx.field("body")
    _check_body(body, "Issue")
    issue = r.add_issue(title=str(title), body=body, author=ctx.login,
                        labels=_names(ctx.field("labels") or []))
    return Reply(201, _single_issue(ctx, r, issue))


@route("GET", r"{REPO}/issues/(?P<number>\d+)")
def get_issue(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    return Reply(200, _single_issue(ctx, r, ctx.issue(r, number)))


@route("PATCH", r"{REPO}/issues/(?P<number>\d+)")
def edit_issue(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    issue = ctx.issue(r, number)
    _edit_issue(ctx, r, issue)
    return Reply(200, _single_issue(ctx, r, issue))


def _single_issue(ctx: Ctx, r: Repo, issue: IssueRec) -> Json:
    """One issue, as GitHub sends it outside lists: with ``closed_by``."""
    data = render.issue(ctx.base, r, issue)
    data["closed_by"] = None
    if issue.closed_by:
        data["closed_by"] = render.user(ctx.base, ctx.world.user(issue.closed_by))
    return data


def _edit_issue(ctx: Ctx, r: Repo, issue: IssueRec) -> None:
    if "title" in (ctx.body or {}):
        issue.title = str(ctx.field("title"))
    if "body" in (ctx.body or {}):
        _check_body(ctx.field("body"), "Issue")
        issue.body = ctx.field("body")
    state = ctx.field("state")
    if state is not None:
        if state not in ("open", "closed"):
            raise invalid("Issue", "state")
        if state != issue.state:
            issue.state = state
            issue.closed_at = ctx.world.now() if state == "closed" else None
            issue.closed_by = ctx.login if state == "closed" else None
            issue.state_reason = (ctx.field("state_reason") or "completed"
                                  if state == "closed" else "reopened")
    if "labels" in (ctx.body or {}):
        issue.labels = [r.add_label(n).name for n in _names(ctx.field("labels") or [])]
    issue.updated_at = ctx.world.now()


def _names(labels: Json) -> list[str]:
    return [str(x["name"]) if isinstance(x, dict) else str(x) for x in labels]


def _check_body(body: Json, resource: str) -> None:
    if isinstance(body, str) and len(body) > COMMENT_LIMIT:
        raise invalid(resource, "body", "custom",
                      f"body is too long (maximum is {COMMENT_LIMIT} characters)")


def _since(ctx: Ctx) -> datetime | None:
    raw = ctx.query.get("since")
    if not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


# -- issue comments --------------------------------------------------------------------
@route("GET", r"{REPO}/issues/(?P<number>\d+)/comments")
def list_comments(ctx: Ctx, owner: str, name: str, number: str) -> Page:
    r = ctx.repo(owner, name)
    issue = ctx.issue(r, number)
    since = _since(ctx)
    found = [c for c in r.comments_on(issue.number) if since is None or c.updated_at >= since]
    return Page(list(found), lambda c: render.comment(ctx.base, r, c))


@route("GET", r"{REPO}/issues/comments")
def list_repo_comments(ctx: Ctx, owner: str, name: str) -> Page:
    r = ctx.repo(owner, name)
    since = _since(ctx)
    found = sorted((c for c in r.comments.values()
                    if since is None or c.updated_at >= since), key=lambda c: c.id)
    return Page(list(found), lambda c: render.comment(ctx.base, r, c))


@route("POST", r"{REPO}/issues/(?P<number>\d+)/comments")
def create_comment(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    issue = ctx.issue(r, number)
    body = ctx.field("body")
    if not isinstance(body, str) or not body:
        raise invalid("IssueComment", "body", "missing_field")
    _check_body(body, "IssueComment")
    comment = r.add_comment(issue.number, ctx.login, body)
    issue.updated_at = comment.created_at
    return Reply(201, render.comment(ctx.base, r, comment),
                 headers={"Location": f"{ctx.base}/repos/{r.full_name}/issues/comments/"
                                      f"{comment.id}"})


def _comment(ctx: Ctx, r: Repo, comment_id: str) -> CommentRec:
    found = r.comments.get(int(comment_id))
    if found is None:
        raise not_found()
    return found


@route("GET", r"{REPO}/issues/comments/(?P<cid>\d+)")
def get_comment(ctx: Ctx, owner: str, name: str, cid: str) -> Reply:
    r = ctx.repo(owner, name)
    return Reply(200, render.comment(ctx.base, r, _comment(ctx, r, cid)))


@route("PATCH", r"{REPO}/issues/comments/(?P<cid>\d+)")
def edit_comment(ctx: Ctx, owner: str, name: str, cid: str) -> Reply:
    r = ctx.repo(owner, name)
    comment = _comment(ctx, r, cid)
    body = ctx.field("body")
    if not isinstance(body, str) or not body:
        raise invalid("IssueComment", "body", "missing_field")
    _check_body(body, "IssueComment")
    comment.body = body
    comment.updated_at = ctx.world.now()
    return Reply(200, render.comment(ctx.base, r, comment))


@route("DELETE", r"{REPO}/issues/comments/(?P<cid>\d+)")
def delete_comment(ctx: Ctx, owner: str, name: str, cid: str) -> Reply:
    r = ctx.repo(owner, name)
    comment = _comment(ctx, r, cid)
    r.delete_comment(comment.id)
    return Reply(204)


# -- reactions -------------------------------------------------------------------------
def _subject(ctx: Ctx, r: Repo, kind: str, ident: str) -> tuple[str, int]:
    if kind == "issues":
        return ("issue", ctx.issue(r, ident).number)
    if kind == "issues/comments":
        return ("comment", _comment(ctx, r, ident).id)
    if int(ident) not in r.review_comments:
        raise not_found()
    return ("review_comment", int(ident))


REACTION_TARGET = r"{REPO}/(?P<kind>issues|issues/comments|pulls/comments)/(?P<ident>\d+)"


@route("GET", REACTION_TARGET + "/reactions")
def list_reactions(ctx: Ctx, owner: str, name: str, kind: str, ident: str) -> Page:
    r = ctx.repo(owner, name)
    subject = _subject(ctx, r, kind, ident)
    wanted = ctx.query.get("content")
    found = [x for x in r.reactions_by_subject.get(subject, {}).values()
             if wanted is None or x.content == wanted]
    return Page(sorted(found, key=lambda x: x.id), lambda x: render.reaction(ctx.base, r, x))


@route("POST", REACTION_TARGET + "/reactions")
def create_reaction(ctx: Ctx, owner: str, name: str, kind: str, ident: str) -> Reply:
    r = ctx.repo(owner, name)
    subject = _subject(ctx, r, kind, ident)
    content = ctx.field("content")
    if content not in REACTIONS:
        raise invalid("Reaction", "content")
    keyword = {"issue": "number", "comment": "comment_id",
               "review_comment": "review_comment_id"}[subject[0]]
    reaction, new = r.add_reaction(ctx.login, str(content), **{keyword: subject[1]})
    return Reply(201 if new else 200, render.reaction(ctx.base, r, reaction))


@route("DELETE", REACTION_TARGET + r"/reactions/(?P<rid>\d+)")
def delete_reaction(ctx: Ctx, owner: str, name: str, kind: str, ident: str,
                    rid: str) -> Reply:
    r = ctx.repo(owner, name)
    subject = _subject(ctx, r, kind, ident)
    reaction = r.reactions.get(int(rid))
    if reaction is None or reaction.subject != subject:
        raise not_found()
    r.delete_reaction(reaction.id)
    return Reply(204)


# -- labels ----------------------------------------------------------------------------
@route("GET", "{REPO}/labels")
def list_labels(ctx: Ctx, owner: str, name: str) -> Page:
    r = ctx.repo(owner, name)
    return Page(sorted(r.labels.values(), key=lambda x: x.name.lower()),
                lambda x: render.label(ctx.base, r, x))


def _valid_color(color: Json) -> bool:
    return isinstance(color, str) and re.fullmatch(r"[0-9a-fA-F]{6}", color) is not None


@route("POST", "{REPO}/labels")
def create_label(ctx: Ctx, owner: str, name: str) -> Reply:
    r = ctx.repo(owner, name)
    label_name = ctx.field("name")
    if not label_name:
        raise invalid("Label", "name", "missing_field")
    color = ctx.field("color", "ededed")
    if not _valid_color(color):
        raise ApiError(422, "Validation Failed", errors=[
            {"resource": "Label", "code": "invalid", "field": "color"}],
            docs="https://docs.github.com/rest/reference/issues#create-a-label")
    if str(label_name).lower() in r.labels:
        raise ApiError(422, "Validation Failed", errors=[
            {"resource": "Label", "code": "already_exists", "field": "name"}],
            docs="https://docs.github.com/rest/reference/issues#create-a-label")
    label = r.add_label(str(label_name), str(color), ctx.field("description"))
    return Reply(201, render.label(ctx.base, r, label))


@route("GET", r"{REPO}/labels/(?P<label>[^/]+)")
def get_label(ctx: Ctx, owner: str, name: str, label: str) -> Reply:
    r = ctx.repo(owner, name)
    found = r.labels.get(label.lower())
    if found is None:
        raise not_found()
    return Reply(200, render.label(ctx.base, r, found))


@route("PATCH", r"{REPO}/labels/(?P<label>[^/]+)")
def edit_label(ctx: Ctx, owner: str, name: str, label: str) -> Reply:
    r = ctx.repo(owner, name)
    found = r.labels.pop(label.lower(), None)
    if found is None:
        raise not_found()
    if ctx.field("color") is not None:
        if not _valid_color(ctx.field("color")):
            r.labels[found.name.lower()] = found
            raise invalid("Label", "color")
        found.color = str(ctx.field("color"))
    new_name = ctx.field("new_name")
    if new_name:
        for issue in r.issues.values():
            issue.labels = [str(new_name) if n == found.name else n for n in issue.labels]
        found.name = str(new_name)
    if "description" in (ctx.body or {}):
        found.description = ctx.field("description")
    r.labels[found.name.lower()] = found
    return Reply(200, render.label(ctx.base, r, found))


@route("DELETE", r"{REPO}/labels/(?P<label>[^/]+)")
def delete_label(ctx: Ctx, owner: str, name: str, label: str) -> Reply:
    r = ctx.repo(owner, name)
    found = r.labels.pop(label.lower(), None)
    if found is None:
        raise not_found()
    for issue in r.issues.values():
        issue.labels = [n for n in issue.labels if n != found.name]
    return Reply(204)


@route("GET", r"{REPO}/issues/(?P<number>\d+)/labels")
def list_issue_labels(ctx: Ctx, owner: str, name: str, number: str) -> Page:
    r = ctx.repo(owner, name)
    issue = ctx.issue(r, number)
    return Page(list(issue.labels), lambda n: render.label(ctx.base, r, r.add_label(n)))


def _requested_labels(ctx: Ctx) -> list[str]:
    body = ctx.body
    if isinstance(body, dict):
        body = body.get("labels")
    if not isinstance(body, list) or not body:
        raise invalid("Label", "labels", "missing_field")
    return _names(body)


@route("POST", r"{REPO}/issues/(?P<number>\d+)/labels")
def add_issue_labels(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    issue = ctx.issue(r, number)
    for label_name in _requested_labels(ctx):
        label = r.add_label(label_name)
        if label.name.lower() not in (n.lower() for n in issue.labels):
            issue.labels.append(label.name)
    issue.updated_at = ctx.world.now()
    return Reply(200, [render.label(ctx.base, r, r.add_label(n)) for n in issue.labels])


@route("PUT", r"{REPO}/issues/(?P<number>\d+)/labels")
def set_issue_labels(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    issue = ctx.issue(r, number)
    body = ctx.body.get("labels") if isinstance(ctx.body, dict) else ctx.body
    issue.labels = [r.add_label(n).name for n in _names(body or [])]
    return Reply(200, [render.label(ctx.base, r, r.add_label(n)) for n in issue.labels])


@route("DELETE", r"{REPO}/issues/(?P<number>\d+)/labels/(?P<label>[^/]+)")
def remove_issue_label(ctx: Ctx, owner: str, name: str, number: str, label: str) -> Reply:
    r = ctx.repo(owner, name)
    issue = ctx.issue(r, number)
    kept = [n for n in issue.labels if n.lower() != label.lower()]
    if len(kept) == len(issue.labels):
        raise ApiError(404, "Label does not exist",
                       docs="https://docs.github.com/rest/issues/labels"
                            "#remove-a-label-from-an-issue")
    issue.labels = kept
    issue.updated_at = ctx.world.now()
    return Reply(200, [render.label(ctx.base, r, r.add_label(n)) for n in issue.labels])


# -- pulls -----------------------------------------------------------------------------
@route("GET", "{REPO}/pulls")
def list_pulls(ctx: Ctx, owner: str, name: str) -> Page:
    r = ctx.repo(owner, name)
    state = ctx.query.get("state", "open")
    base = ctx.query.get("base")
    found = [i for i in r.issues.values() if i.pull is not None
             and (state == "all" or i.state == state)
             and (base is None or i.pull.base_ref == base)]
    found.sort(key=lambda i: i.number, reverse=True)
    return Page(list(found), lambda i: render.pull(ctx.base, r, i))


@route("GET", r"{REPO}/pulls/(?P<number>\d+)")
def get_pull(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    return Reply(200, render.pull(ctx.base, r, ctx.pull(r, number)))


@route("PATCH", r"{REPO}/pulls/(?P<number>\d+)")
def edit_pull(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    issue = ctx.pull(r, number)
    _edit_issue(ctx, r, issue)
    return Reply(200, render.pull(ctx.base, r, issue))


@route("GET", r"{REPO}/pulls/(?P<number>\d+)/files")
def list_pull_files(ctx: Ctx, owner: str, name: str, number: str) -> Page:
    r = ctx.repo(owner, name)
    issue = ctx.pull(r, number)
    assert issue.pull is not None
    return Page(list(issue.pull.files), lambda f: render.pull_file(ctx.base, r, issue, f))


@route("GET", r"{REPO}/pulls/(?P<number>\d+)/comments")
def list_review_comments(ctx: Ctx, owner: str, name: str, number: str) -> Page:
    r = ctx.repo(owner, name)
    issue = ctx.pull(r, number)
    found = sorted((c for c in r.review_comments.values() if c.number == issue.number),
                   key=lambda c: c.id)
    return Page(list(found), lambda c: render.review_comment(ctx.base, r, c))


@route("POST", r"{REPO}/pulls/(?P<number>\d+)/comments")
def create_review_comment(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    issue = ctx.pull(r, number)
    assert issue.pull is not None
    body = ctx.field("body")
    if not body:
        raise invalid("PullRequestReviewComment", "body", "missing_field")
    reply_to = ctx.field("in_reply_to")
    parent = r.review_comments.get(int(reply_to)) if reply_to else None
    path = ctx.field("path") or (parent.path if parent else None)
    if not path:
        raise invalid("PullRequestReviewComment", "path", "missing_field")
    when = ctx.world.now()
    comment = ReviewCommentRec(ctx.world.new_id(), issue.number, ctx.login, str(body),
                               str(path), str(ctx.field("commit_id") or issue.pull.head_sha),
                               parent.id if parent else None, when, when)
    r.review_comments[comment.id] = comment
    return Reply(201, render.review_comment(ctx.base, r, comment))


@route("GET", r"{REPO}/pulls/comments/(?P<cid>\d+)")
def get_review_comment(ctx: Ctx, owner: str, name: str, cid: str) -> Reply:
    r = ctx.repo(owner, name)
    found = r.review_comments.get(int(cid))
    if found is None:
        raise not_found()
    return Reply(200, render.review_comment(ctx.base, r, found))


@route("POST", r"{REPO}/pulls/(?P<number>\d+)/requested_reviewers")
def request_reviewers(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    """GitHub's contract: 201 with the pull request; 422 for the author or someone who
    cannot review (not a collaborator), or a team the repository's organisation lacks."""
    r = ctx.repo(owner, name)
    issue = ctx.pull(r, number)
    assert issue.pull is not None
    users = [str(u) for u in ctx.field("reviewers") or []]
    teams = [str(t) for t in ctx.field("team_reviewers") or []]
    if any(u.lower() == issue.user.lower() for u in users):
        raise ApiError(422, "Review cannot be requested from pull request author.")
    for login in users:
        if r.world.users.get(login.lower()) is None:
            raise ApiError(422, "Reviews may only be requested from collaborators. One or "
                                "more of the users or teams you specified is not a "
                                "collaborator of the " + r.full_name + " repository.")
    for slug in teams:
        if (owner.lower(), slug.lower()) not in r.world.teams:
            raise ApiError(422, "Reviews may only be requested from collaborators. One or "
                                "more of the teams you specified is not a collaborator of "
                                "the " + r.full_name + " repository.")
    p = issue.pull
    p.requested_reviewers += [r.world.user(u).login for u in users
                              if u.lower() not in (x.lower() for x in p.requested_reviewers)]
    p.requested_teams += [t for t in teams
                          if t.lower() not in (x.lower() for x in p.requested_teams)]
    return Reply(201, render.pull(ctx.base, r, issue))


@route("GET", r"{REPO}/pulls/(?P<number>\d+)/reviews")
def list_reviews(ctx: Ctx, owner: str, name: str, number: str) -> Page:
    r = ctx.repo(owner, name)
    issue = ctx.pull(r, number)
    found = sorted((v for v in r.reviews.values() if v.number == issue.number),
                   key=lambda v: v.id)
    return Page(list(found), lambda v: render.review(ctx.base, r, v))


@route("POST", r"{REPO}/pulls/(?P<number>\d+)/reviews")
def create_review(ctx: Ctx, owner: str, name: str, number: str) -> Reply:
    r = ctx.repo(owner, name)
    issue = ctx.pull(r, number)
    assert issue.pull is not None
    event = ctx.field("event")
    states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
              "COMMENT": "COMMENTED", None: "PENDING"}
    if event not in states:
        raise invalid("PullRequestReview", "event")
    if event in ("REQUEST_CHANGES", "COMMENT") and not ctx.field("body"):
        raise ApiError(422, "Unprocessable Entity",
                       errors=[f"Review Can not {event.lower()} without a body"])
    review = ReviewRec(ctx.world.new_id(), issue.number, ctx.login, states[event],
                       str(ctx.field("commit_id") or issue.pull.head_sha),
                       str(ctx.field("body") or ""), ctx.world.now())
    r.reviews[review.id] = review
    if event is not None:  # a submitted review answers its request, as on GitHub
        issue.pull.requested_reviewers = [u for u in issue.pull.requested_reviewers
                                          if u.lower() != ctx.login.lower()]
    return Reply(200, render.review(ctx.base, r, review))


# -- check runs ------------------------------------------------------------------------
def _apply_check_run(ctx: Ctx, run: CheckRunRec) -> None:
    status = ctx.field("status", run.status)
    conclusion = ctx.field("conclusion", run.conclusion)
    if ctx.field("conclusion") is not None and ctx.field("status") is None:
        status = "completed"
    if status not in ("queued", "in_progress", "completed", "waiting", "requested",
                      "pending"):
        raise invalid("CheckRun", "status")
    conclusions = ("action_required", "cancelled", "failure", "neutral", "success",
                   "skipped", "stale", "timed_out")
    if status == "completed" and conclusion not in conclusions:
        raise invalid("CheckRun", "conclusion", "missing_field"
                      if conclusion is None else "invalid")
    output = ctx.field("output")
    if output is not None:
        if not isinstance(output, dict) or not output.get("title") or \
                output.get("summary") is None:
            raise invalid("CheckRun", "output", "missing_field")
        for part in ("summary", "text"):
            if len(str(output.get(part) or "")) > CHECK_TEXT_LIMIT:
                raise invalid("CheckRun", f"output.{part}", "custom",
                              f"Only {CHECK_TEXT_LIMIT} characters are allowed; "
                              f"{len(str(output[part]))} were supplied.")
        if len(output.get("annotations") or []) > ANNOTATIONS_PER_REQUEST:
            raise invalid("CheckRun", "output.annotations", "custom",
                          f"at most {ANNOTATIONS_PER_REQUEST} annotations per request")
        run.output = dict(output)
    run.status = str(status)
    run.conclusion = conclusion if status == "completed" else None
    run.completed_at = ctx.world.now() if status == "completed" else None
    for key in ("details_url", "external_id"):
        if ctx.field(key) is not None:
            setattr(run, key, ctx.field(key))
    if ctx.field("name"):
        run.name = str(ctx.field("name"))
    run.history.append((run.status, run.conclusion))


@route("POST", "{REPO}/check-runs")
def create_check_run(ctx: Ctx, owner: str, name: str) -> Reply:
    r = ctx.repo(owner, name)
    for required in ("name", "head_sha"):
        if not ctx.field(required):
            raise invalid("CheckRun", required, "missing_field")
    run = CheckRunRec(ctx.world.new_id(), str(ctx.field("head_sha")), str(ctx.field("name")),
                      "queued", None, {}, ctx.app_slug(), ctx.world.now(), None)
    _apply_check_run(ctx, run)
    r.check_runs[run.id] = run
    return Reply(201, render.check_run(ctx.base, r, run))


@route("GET", r"{REPO}/check-runs/(?P<rid>\d+)")
def get_check_run(ctx: Ctx, owner: str, name: str, rid: str) -> Reply:
    r = ctx.repo(owner, name)
    run = r.check_runs.get(int(rid))
    if run is None:
        raise not_found()
    return Reply(200, render.check_run(ctx.base, r, run))


@route("PATCH", r"{REPO}/check-runs/(?P<rid>\d+)")
def update_check_run(ctx: Ctx, owner: str, name: str, rid: str) -> Reply:
    r = ctx.repo(owner, name)
    run = r.check_runs.get(int(rid))
    if run is None:
        raise not_found()
    _apply_check_run(ctx, run)
    return Reply(200, render.check_run(ctx.base, r, run))


@route("GET", r"{REPO}/commits/(?P<ref>[^/]+)/check-runs")
def list_check_runs(ctx: Ctx, owner: str, name: str, ref: str) -> Page:
    r = ctx.repo(owner, name)
    sha = ref
    if ref in r.files and not re.fullmatch(r"[0-9a-f]{40}", ref):
        sha = next((i.pull.head_sha for i in r.issues.values()
                    if i.pull and i.pull.head_ref == ref), ref)
    wanted = ctx.query.get("check_name")
    status = ctx.query.get("status")
    found = [c for c in r.check_runs.values() if c.head_sha == sha
             and (wanted is None or c.name == wanted) and (status is None or c.status == status)]
    found.sort(key=lambda c: c.id, reverse=True)
    return Page(list(found), lambda c: render.check_run(ctx.base, r, c), key="check_runs")


# -- teams and orgs --------------------------------------------------------------------
def _team(ctx: Ctx, org: str, slug: str) -> Team:
    team = ctx.world.teams.get((org.lower(), slug.lower()))
    if team is None:
        raise not_found()
    return team


def _team_by_ids(ctx: Ctx, org_id: str, team_id: str) -> Team:
    team = ctx.world.team_by_id(int(team_id))
    if team is None or ctx.world.org(team.org).id != int(org_id):
        raise not_found()
    return team


@route("GET", r"/orgs/(?P<org>[^/]+)")
def get_org(ctx: Ctx, org: str) -> Reply:
    if org.lower() not in ctx.world.orgs:
        raise not_found()
    return Reply(200, render.org(ctx.base, ctx.world.org(org)))


@route("GET", r"/orgs/(?P<org>[^/]+)/teams")
def list_teams(ctx: Ctx, org: str) -> Page:
    teams = [t for (o, _), t in sorted(ctx.world.teams.items()) if o == org.lower()]
    return Page(list(teams), lambda t: render.team(ctx.base, t, ctx.world.org(org).id))


@route("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)")
def get_team(ctx: Ctx, org: str, slug: str) -> Reply:
    team = _team(ctx, org, slug)
    return Reply(200, render.team(ctx.base, team, ctx.world.org(org).id))


def _members_page(ctx: Ctx, team: Team) -> Page:
    role = ctx.query.get("role", "all")
    logins = {"member": [m for m in team.members if m not in team.maintainers],
              "maintainer": team.maintainers}.get(role, team.members + [
                  m for m in team.maintainers if m not in team.members])
    return Page(list(logins), lambda m: render.user(ctx.base, ctx.world.user(m)))


def _membership(ctx: Ctx, team: Team, login: str) -> Reply:
    lowered = login.lower()
    role = "maintainer" if lowered in (m.lower() for m in team.maintainers) else "member"
    if lowered in (m.lower() for m in team.members + team.maintainers):
        state = "active"
    elif lowered in (m.lower() for m in team.pending):
        state = "pending"
    else:
        raise not_found()
    org_id = ctx.world.org(team.org).id
    return Reply(200, render.membership(ctx.base, team, org_id, login, state, role))


@route("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)/members")
def list_team_members(ctx: Ctx, org: str, slug: str) -> Page:
    return _members_page(ctx, _team(ctx, org, slug))


@route("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)/memberships/(?P<login>[^/]+)")
def get_team_membership(ctx: Ctx, org: str, slug: str, login: str) -> Reply:
    return _membership(ctx, _team(ctx, org, slug), login)


@route("GET", r"/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)")
def get_team_by_id(ctx: Ctx, org_id: str, team_id: str) -> Reply:
    team = _team_by_ids(ctx, org_id, team_id)
    return Reply(200, render.team(ctx.base, team, int(org_id)))


@route("GET", r"/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)/members")
def list_team_members_by_id(ctx: Ctx, org_id: str, team_id: str) -> Page:
    return _members_page(ctx, _team_by_ids(ctx, org_id, team_id))


@route("GET", r"/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)/memberships/"
              r"(?P<login>[^/]+)")
def get_team_membership_by_id(ctx: Ctx, org_id: str, team_id: str, login: str) -> Reply:
    return _membership(ctx, _team_by_ids(ctx, org_id, team_id), login)


@route("GET", r"/organizations/(?P<org_id>\d+)/team/(?P<team_id>\d+)/members/"
              r"(?P<login>[^/]+)")
def check_team_member_by_id(ctx: Ctx, org_id: str, team_id: str, login: str) -> Reply:
    reply = _membership(ctx, _team_by_ids(ctx, org_id, team_id), login)
    if reply.body["state"] != "active":
        raise not_found()
    return Reply(204)


@route("GET", r"/orgs/(?P<org>[^/]+)/members/(?P<login>[^/]+)")
def check_org_member(ctx: Ctx, org: str, login: str) -> Reply:
    for (o, _), team in ctx.world.teams.items():
        if o == org.lower() and login.lower() in (m.lower() for m in team.members):
            return Reply(204)
    raise not_found()


# -- search ----------------------------------------------------------------------------
def _search_terms(q: str) -> list[str]:
    try:
        return shlex.split(q)
    except ValueError:
        return q.split()


def _field_is(attr: str, value: str) -> Callable[[IssueRec], bool]:
    return lambda i: str(getattr(i, attr)).lower() == value.lower()


def _has_label(value: str) -> Callable[[IssueRec], bool]:
    return lambda i: value.lower() in (n.lower() for n in i.labels)


@route("GET", "/search/issues")
def search_issues(ctx: Ctx) -> Page:
    q = ctx.query.get("q", "")
    if not q.strip():
        raise invalid("Search", "q", "missing")
    repos: list[Repo] = []
    filters: list[Callable[[IssueRec], bool]] = []
    words: list[str] = []
    for term in _search_terms(q):
        key, sep, value = term.partition(":")
        key = key.lower()
        if not sep:
            words.append(term.lower())
        elif key == "repo":
            found = ctx.world.repos.get(value.lower())
            if found is None:
                raise ApiError(422, "Validation Failed", errors=[{
                    "message": "The listed users and repositories cannot be searched either "
                               "because the resources do not exist or you do not have "
                               "permission to view them.", "resource": "Search",
                    "field": "q", "code": "invalid"}])
            repos.append(found)
        elif key in ("is", "type") and value in ("pr", "pull-request"):
            filters.append(lambda i: i.pull is not None)
        elif key in ("is", "type") and value == "issue":
            filters.append(lambda i: i.pull is None)
        elif key in ("is", "state") and value in ("open", "closed"):
            filters.append(_field_is("state", value))
        elif key == "is" and value == "merged":
            filters.append(lambda i: bool(i.pull and i.pull.merged))
        elif key == "label":
            filters.append(_has_label(value))
        elif key == "author":
            filters.append(_field_is("user", value))
        elif key == "in":
            continue
        else:
            words.append(term.lower())
    pool = repos or list(ctx.world.repos.values())
    hits: list[tuple[Repo, IssueRec]] = []
    for r in pool:
        for i in sorted(r.issues.values(), key=lambda i: i.number, reverse=True):
            text = f"{i.title}\n{i.body or ''}".lower()
            if all(f(i) for f in filters) and all(w in text for w in words):
                hits.append((r, i))
    return Page(hits, lambda hit: {**render.issue(ctx.base, *hit), "score": 1.0}, key="items",
                extra={"incomplete_results": False})


# -- workflow runs ---------------------------------------------------------------------
def _compare_with(compare: Callable[[datetime, datetime], Any],
                  bound: datetime) -> Callable[[datetime], bool]:
    return lambda d: bool(compare(d, bound))


def _created_filter(raw: str) -> Callable[[datetime], bool]:
    """GitHub's ``created`` qualifier: ``>=DATE``, ``<DATE``, ``A..B`` or a date."""
    def parse(text: str) -> datetime:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if ".." in raw:
        low, high = raw.split("..", 1)
        return lambda d: (low in ("", "*") or d >= parse(low)) and \
            (high in ("", "*") or d <= parse(high))
    for op, compare in ((">=", operator.ge), ("<=", operator.le), (">", operator.gt),
                        ("<", operator.lt)):
        if raw.startswith(op):
            return _compare_with(compare, parse(raw[len(op):]))
    day = parse(raw).date()
    return lambda d: d.date() == day


@route("GET", "{REPO}/actions/runs")
def list_workflow_runs(ctx: Ctx, owner: str, name: str) -> Page:
    r = ctx.repo(owner, name)
    runs = list(r.workflow_runs.values())
    if ctx.query.get("created"):
        keep = _created_filter(ctx.query["created"])
        runs = [w for w in runs if keep(w.created_at)]
    for key, attr in (("status", "status"), ("branch", "head_branch"), ("event", "event"),
                      ("head_sha", "head_sha"), ("actor", "actor")):
        if ctx.query.get(key):
            runs = [w for w in runs if str(getattr(w, attr)) == ctx.query[key]
                    or (key == "status" and w.conclusion == ctx.query[key])]
    runs.sort(key=lambda w: (w.created_at, w.id), reverse=True)
    return Page(list(runs), lambda w: render.workflow_run(ctx.base, r, w), key="workflow_runs")
