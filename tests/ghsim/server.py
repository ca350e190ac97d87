"""The simulator's HTTP side: a threaded server on 127.0.0.1 speaking GitHub's REST dialect.

It adds what every GitHub answer carries (rate-limit headers, ETags with 304 on
``If-None-Match``, ``Link`` pagination with ``per_page``), injects faults, and logs every
request so tests can assert on what the bot sent. Standard library only, so the bench
scripts can run it in a plain process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.ghsim import api
from tests.ghsim.faults import Fault
from tests.ghsim.state import Installation, Repo, Team, World

JSON_TYPE = "application/json; charset=utf-8"
SEARCH_LIMIT = 30
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass
class LoggedRequest:
    """One request as the simulator saw it. ``status`` is ``None`` when the connection was
    dropped; ``fault`` names the injected fault that shaped the answer, if any."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None
    login: str
    fault: str | None = None
    ms: float = 0.0
    points: int = 0  # rate-limit points it cost (a 304 costs none, as on GitHub)

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


class _Bucket:
    def __init__(self, limit: int, window: int) -> None:
        self.limit = limit
        self.window = window
        self.used = 0
        self.reset = int(time.time()) + window

    def roll(self) -> None:
        now = int(time.time())
        if now >= self.reset:
            self.used = 0
            self.reset = now + self.window

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


class GitHubSimulator:
    """A local GitHub: ``with GitHubSimulator() as sim: Github(base_url=sim.base_url, ...)``.

    Seeding (all return the records they create):
      ``sim.repo("o/r")`` -> ``Repo`` (created on first use) with ``put_file``, ``add_pull``,
      ``add_issue``, ``add_comment``, ``add_reaction``, ``add_review``,
      ``add_review_comment``, ``add_label``, ``set_permission``, ``add_workflow_run``,
      ``delete_comment``, ``concurrent_edit`` (someone else commits just before the bot's
      next PUT: a real 409); ``sim.set_team(org, slug, members, pending=...)``;
      ``sim.add_installation(id, org)`` for App auth (``expire_tokens`` to force a
      refresh); ``sim.set_token(token, login)`` to choose who a token acts as (by default
      every token acts as ``world.default_login``, ``cvf-governance[bot]``); a frozen or
      stepped clock with ``GitHubSimulator(world=World(clock=...))``.
    Limits: ``enforce_rate_limit=True`` answers 403 once ``rate_limit`` requests an hour are
      used; ``writes_per_minute=80`` applies GitHub's secondary limit on writes.
    Faults: ``fail``, ``secondary_rate_limit``, ``primary_rate_limit``,
      ``too_many_requests``, ``slow``, ``drop``, ``conflict``, ``fail_team_lookup``, ``inject`` and
      ``clear_faults``; each is scoped by ``method`` and a ``path`` regex and fires ``times``.
    Inspection: ``sim.requests`` (``LoggedRequest`` list), ``sim.writes()``,
      ``sim.count(method, path_regex)``, ``sim.points(login)`` and ``sim.points_by_client()``
      (rate-limit points spent: every counted answer but a 304 to ``If-None-Match``),
      ``sim.errors`` (simulator bugs, should stay empty),
      and the ``Repo`` helpers ``comments_on``, ``labels_on``, ``file_text``,
      ``check_runs_for``, ``reactions_on``.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, world: World | None = None,
                 rate_limit: int = 5000, enforce_rate_limit: bool = False,
                 writes_per_minute: int | None = None,
                 log_limit: int | None = 200_000, valid_tokens: set[str] | None = None,
                 default_per_page: int = 30) -> None:
        self.world = world or World()
        self.host = host
        self.port = port
        self.rate_limit = rate_limit
        self.enforce_rate_limit = enforce_rate_limit
        # GitHub's documented secondary limit on content-creating requests (80 a minute);
        # off unless asked for, so load tests choose whether to meet it.
        self.writes_per_minute = writes_per_minute
        self._recent_writes: dict[str, deque[float]] = {}
        self.valid_tokens = valid_tokens
        self.default_per_page = default_per_page
        # Whether a 304 repeats the page's ``Link`` header. Either way its ETag covers the
        # body only (as GitHub's does), so an unchanged full page keeps its ETag while a
        # new page appears after it; clients must not trust a kept "no next page".
        self.link_on_304 = True
        self.faults: list[Fault] = []
        self.errors: list[str] = []
        self._log: deque[LoggedRequest] = deque(maxlen=log_limit)
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._request_ids = iter(range(1, 1 << 62))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> GitHubSimulator:
        handler = type("GhsimHandler", (_Handler,), {"sim": self})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        server.block_on_close = False  # keep-alive clients must not hold up stop()
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="ghsim",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GitHubSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: give it to PyGithub as ``base_url`` (and to the bot as
        ``GITHUB_API_URL``); every URL the simulator returns starts with it."""
        return f"http://{self.host}:{self.port}"

    # -- seeding shortcuts ----------------------------------------------------------
    def repo(self, full_name: str, *, default_branch: str = "main") -> Repo:
        """The repository ``owner/name`` (created with ``default_branch`` on first use)."""
        with self.world.lock:
            if full_name.lower() not in self.world.repos:
                return self.world.add_repo(full_name, default_branch=default_branch)
            return self.world.repo(full_name)

    def set_team(self, org: str, slug: str, members: list[str] | tuple[str, ...], *,
                 pending: tuple[str, ...] | list[str] = (),
                 maintainers: tuple[str, ...] | list[str] = ()) -> Team:
        return self.world.set_team(org, slug, members, pending=pending,
                                   maintainers=maintainers)

    def add_installation(self, installation_id: int, account: str,
                         app_slug: str = "cvf-governance") -> Installation:
        """An App installation on ``account``; ``POST /app/installations/{id}/access_tokens``
        with any JWT then issues tokens that act as ``{app_slug}[bot]``."""
        return self.world.add_installation(installation_id, account, app_slug)

    def add_manifest_code(self, code: str, manifest: dict[str, Any], *,
                          owner: str = "octocat") -> None:
        """What github.com does when someone submits a manifest form: it remembers the
        manifest and redirects with ``code``, which ``POST /app-manifests/{code}/conversions``
        then turns into the App (once)."""
        with self.world.lock:
            self.world.manifest_codes[code] = (owner, dict(manifest))

    def set_token(self, token: str, login: str) -> None:
        self.world.set_token(token, login)

    def expire_tokens(self) -> None:
        """Make every installation token issued so far expired (401 Bad credentials)."""
        with self.world.lock:
            for grant in self.world.grants.values():
                grant.expires_at = self.world.now().replace(year=2000)

    # -- faults ---------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail(self, status: int = 502, *, times: int = 1, method: str = "*", path: str = ".*",
             body: dict[str, Any] | None = None) -> Fault:
        """Answer ``status`` (5xx, 409, 422, ...) to the next ``times`` matching requests."""
        return self.inject(Fault("status", method, path, times, status=status, body=body))

    def secondary_rate_limit(self, *, retry_after: float | None = 1, times: int = 1,
                             method: str = "*", path: str = ".*") -> Fault:
        return self.inject(Fault("secondary_rate_limit", method, path, times, status=403,
                                 retry_after=retry_after))

    def primary_rate_limit(self, *, reset_in: float = 3600, times: int = 1,
                           method: str = "*", path: str = ".*") -> Fault:
        return self.inject(Fault("primary_rate_limit", method, path, times, status=403,
                                 retry_after=reset_in))

    def too_many_requests(self, *, retry_after: float | None = 1, times: int = 1,
                          method: str = "*", path: str = ".*") -> Fault:
        return self.inject(Fault("status", method, path, times, status=429,
                                 retry_after=retry_after))

    def slow(self, delay: float, *, times: int = 1, method: str = "*",
             path: str = ".*") -> Fault:
        return self.inject(Fault("slow", method, path, times, delay=delay))

    def drop(self, *, after_write: bool = False, times: int = 1, method: str = "*",
             path: str = ".*") -> Fault:
        """Close the connection without answering; ``after_write=True`` applies the
        request first, the case where a retried POST would post twice."""
        return self.inject(Fault("drop", method, path, times, after_write=after_write))

    def conflict(self, *, times: int = 1, path: str = r"/contents/") -> Fault:
        """409 on the next ``times`` contents PUTs, with GitHub's body for a stale sha
        (for a conflict arising from real state, see ``Repo.concurrent_edit``)."""
        body = {"message": "the file does not match the sha given (it changed meanwhile)",
                "documentation_url": "https://docs.github.com/rest/repos/contents"
                                     "#create-or-update-file-contents"}
        return self.inject(Fault("status", "PUT", path, times, status=409, body=body))

    def fail_team_lookup(self, org: str, slug: str, *, status: int = 403,
                         times: int = -1) -> Fault:
        """Team reads answer ``status`` (by slug or by id) as for a token without
        ``members:read``."""
        team = self.world.teams.get((org.lower(), slug.lower()))
        paths = [rf"^/orgs/{re.escape(org)}/teams/{re.escape(slug)}(/|$)"]
        if team is not None:
            paths.append(rf"^/organizations/\d+/team/{team.id}(/|$)")
        body = {"message": "Resource not accessible by integration",
                "documentation_url": "https://docs.github.com/rest/teams/members"}
        return self.inject(Fault("status", "GET", "|".join(paths), times, status=status,
                                 body=body if status == 403 else None))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    # -- inspection -----------------------------------------------------------------
    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def writes(self, method: str | None = None, path: str = ".*") -> list[LoggedRequest]:
        """Logged write requests (POST/PATCH/PUT/DELETE) whose path matches the regex."""
        pattern = re.compile(path)
        return [r for r in self.requests if r.is_write
                and (method is None or r.method == method.upper())
                and pattern.search(r.path)]

    def count(self, method: str | None = None, path: str = ".*") -> int:
        pattern = re.compile(path)
        return sum(1 for r in self.requests
                   if (method is None or r.method == method.upper()) and pattern.search(r.path))

    def points(self, login: str | None = None, path: str = ".*") -> int:
        """Rate-limit points spent (by ``login``, on paths matching the regex): what
        ``X-RateLimit-Used`` went up by. A 304 to a conditional request costs none."""
        pattern = re.compile(path)
        return sum(r.points for r in self.requests
                   if (login is None or r.login == login) and pattern.search(r.path))

    def points_by_client(self) -> dict[str, int]:
        """Rate-limit points spent per client (the login its token acts as)."""
        spent: dict[str, int] = {}
        for r in self.requests:
            spent[r.login] = spent.get(r.login, 0) + r.points
        return spent

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- request handling -------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.consume()
                    return fault
        return None

    def _log_request(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    def _bucket(self, token: str | None, resource: str) -> _Bucket:
        key = (token or "", resource)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                limit = SEARCH_LIMIT if resource == "search" else (
                    self.rate_limit if token else 60)
                bucket = _Bucket(limit, 60 if resource == "search" else 3600)
                self._buckets[key] = bucket
            bucket.roll()
            return bucket

    def _too_many_writes(self, token: str | None) -> bool:
        if self.writes_per_minute is None:
            return False
        now = time.monotonic()
        with self._lock:
            recent = self._recent_writes.setdefault(token or "", deque())
            while recent and now - recent[0] >= 60:
                recent.popleft()
            if len(recent) >= self.writes_per_minute:
                return True
            recent.append(now)
            return False

    def _rewrite(self, path: str) -> str:
        match = re.match(r"^/repositories/(\d+)(/.*)?$", path)
        if match:
            repo = self.world.repo_by_id(int(match.group(1)))
            if repo is not None:
                return f"/repos/{repo.full_name}{match.group(2) or ''}"
        return path

    def _serve(self, h: _Handler) -> None:
        started = time.perf_counter()
        method = h.command
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        split = urlsplit(h.path)
        path = self._rewrite(split.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(pairs)
        headers = {k.lower(): v for k, v in h.headers.items()}
        token = _token(headers.get("authorization", ""))
        login = self.world.login_for(token)
        entry = LoggedRequest(method, path, query, None, None, login)
        try:
            entry.body = json.loads(raw) if raw else None
        except ValueError:
            entry.body = raw.decode("utf-8", "replace")
            self._finish(h, entry, started, 400, {"message": "Problems parsing JSON",
                                                  "documentation_url": api.DOCS})
            return
        resource = "search" if path.startswith("/search/") else "core"
        counted = path != "/rate_limit"
        bucket = self._bucket(token, resource)

        fault = self._take_fault(method, path)
        if fault is not None:
            entry.fault = fault.kind
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "drop" and not fault.after_write:
                self._drop(h, entry, started)
                return
            elif fault.kind != "drop":
                self._answer_fault(h, entry, started, fault, bucket)
                return

        denied = self._check_auth(method, path, headers, token)
        if denied is not None:
            self._finish(h, entry, started, 401, denied, bucket=bucket)
            return
        if counted and self.enforce_rate_limit and bucket.remaining == 0:
            self._finish(h, entry, started, 403, {
                "message": f"API rate limit exceeded for {login}.",
                "documentation_url": "https://docs.github.com/rest/overview/"
                                     "rate-limits-for-the-rest-api"}, bucket=bucket)
            return

        if method in WRITE_METHODS and self._too_many_writes(token):
            entry.fault = "secondary_rate_limit"
            self._answer_fault(h, entry, started, Fault("secondary_rate_limit", status=403,
                                                        retry_after=60), bucket)
            return

        status, body, extra, raw_out = self._dispatch(method, path, query, pairs, entry.body,
                                                      headers, token, login)
        if fault is not None and fault.kind == "drop":
            self._drop(h, entry, started)
            return
        etag = None
        if method == "GET" and status == 200:
            payload = raw_out if raw_out is not None else _encode(body)
            etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
            if _etag_matches(headers.get("if-none-match", ""), etag):
                # A 304 does not count against the rate limit, as on GitHub.
                kept = {k: v for k, v in (extra or {}).items()
                        if self.link_on_304 or k.lower() != "link"}
                self._finish(h, entry, started, 304, None, bucket=bucket, etag=etag,
                             extra=kept, counted=False)
                return
        self._finish(h, entry, started, status, body, bucket=bucket, etag=etag, extra=extra,
                     raw=raw_out, counted=counted, resource=resource)

    def _dispatch(self, method: str, path: str, query: dict[str, str],
                  pairs: list[tuple[str, str]], body: Any, headers: dict[str, str],
                  token: str | None,
                  login: str) -> tuple[int, Any, dict[str, str], bytes | None]:
        found = api.find_route(method, path)
        if found is None:
            return 404, {"message": "Not Found", "documentation_url": api.DOCS}, {}, None
        func, params = found
        ctx = api.Ctx(self.world, self.base_url, method, path, query, body, headers, token,
                      login)
        try:
            with self.world.lock:
                result = func(ctx, **params)
                if path == "/rate_limit":
                    result = api.Reply(200, self._rate_limit_body(token))
                if isinstance(result, api.Page):
                    return self._paginate(path, pairs, result)
        except api.ApiError as exc:
            return exc.status, exc.body, {}, None
        except Exception as exc:  # a simulator bug: answer 500 and keep it for the test
            self.errors.append(f"{method} {path}: {exc!r}")
            return 500, {"message": f"ghsim internal error: {exc!r}"}, {}, None
        return result.status, result.body, dict(result.headers), result.raw

    def _paginate(self, path: str, pairs: list[tuple[str, str]],
                  page: api.Page) -> tuple[int, Any, dict[str, str], bytes | None]:
        query = dict(pairs)
        try:
            per_page = min(max(int(query.get("per_page") or self.default_per_page), 1), 100)
            number = max(int(query.get("page") or 1), 1)
        except ValueError:
            return 422, {"message": "Invalid per_page or page",
                         "documentation_url": api.DOCS}, {}, None
        total = len(page.items)
        last = max(-(-total // per_page), 1)
        items = page.items[(number - 1) * per_page: number * per_page]
        if page.render is not None:
            items = [page.render(item) for item in items]
        headers: dict[str, str] = {}
        if last > 1:
            kept = [(k, v) for k, v in pairs if k != "page"]

            def link(n: int, rel: str) -> str:
                return f'<{self.base_url}{path}?{urlencode(kept + [("page", str(n))])}>; ' \
                       f'rel="{rel}"'

            rels = []
            if number > 1:
                rels.append(link(number - 1, "prev"))
            if number < last:
                rels += [link(number + 1, "next"), link(last, "last")]
            if number > 1:
                rels.append(link(1, "first"))
            headers["Link"] = ", ".join(rels)
        if page.key is None:
            return 200, items, headers, None
        body: dict[str, Any] = {"total_count": total}
        body.update(page.extra)
        body[page.key] = items
        return 200, body, headers, None

    def _check_auth(self, method: str, path: str, headers: dict[str, str],
                    token: str | None) -> dict[str, Any] | None:
        if path.startswith("/app/"):
            return None  # the handler checks the JWT
        if path.startswith("/app-manifests/"):
            return None  # the one-time code is the credential
        bad = {"message": "Bad credentials", "documentation_url": api.DOCS}
        if token is None:
            if method in WRITE_METHODS:
                return {"message": "Requires authentication", "documentation_url": api.DOCS}
            return None
        grant = self.world.grants.get(token)
        if grant is not None:
            return bad if grant.expires_at <= self.world.now() else None
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return bad
        return None

    def _rate_limit_body(self, token: str | None) -> dict[str, Any]:
        resources = {}
        for resource in ("core", "search"):
            b = self._bucket(token, resource)
            resources[resource] = {"limit": b.limit, "used": b.used,
                                   "remaining": b.remaining, "reset": b.reset}
        return {"resources": resources, "rate": resources["core"]}

    def _answer_fault(self, h: _Handler, entry: LoggedRequest, started: float, fault: Fault,
                      bucket: _Bucket) -> None:
        extra: dict[str, str] = {}
        if fault.kind == "primary_rate_limit":
            reset = int(time.time() + (fault.retry_after or 3600))
            extra.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
        elif fault.retry_after is not None:
            extra["Retry-After"] = str(int(fault.retry_after)
                                       if float(fault.retry_after).is_integer()
                                       else fault.retry_after)
        self._finish(h, entry, started, fault.status, fault.response_body(), bucket=bucket,
                     extra=extra)

    def _drop(self, h: _Handler, entry: LoggedRequest, started: float) -> None:
        h.close_connection = True
        with contextlib.suppress(OSError):  # a reset, like a proxy dying mid-request
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
        entry.ms = (time.perf_counter() - started) * 1000
        self._log_request(entry)

    def _finish(self, h: _Handler, entry: LoggedRequest, started: float, status: int,
                body: Any, *, bucket: _Bucket | None = None, etag: str | None = None,
                extra: dict[str, str] | None = None, raw: bytes | None = None,
                counted: bool = True, resource: str = "core") -> None:
        payload = b"" if status in (204, 304) else (raw if raw is not None else _encode(body))
        if bucket is not None and counted:
            with self._lock:
                bucket.used += 1
            entry.points = 1
        h.send_response(status)
        headers = {"Content-Type": JSON_TYPE,
                   "X-GitHub-Media-Type": "github.v3; format=json",
                   "X-GitHub-Request-Id": f"0000:{next(self._request_ids):08X}"}
        if bucket is not None:
            headers.update({"X-RateLimit-Limit": str(bucket.limit),
                            "X-RateLimit-Remaining": str(bucket.remaining),
                            "X-RateLimit-Reset": str(bucket.reset),
                            "X-RateLimit-Used": str(bucket.used),
                            "X-RateLimit-Resource": resource})
        if etag is not None:
            headers["ETag"] = etag
            headers["Cache-Control"] = "private, max-age=60, s-maxage=60"
        headers.update(extra or {})
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        # Logged before the answer leaves, so a client that got it finds it in the log.
        entry.status = status
        entry.ms = (time.perf_counter() - started) * 1000
        self._log_request(entry)
        h.end_headers()
        if payload:
            h.wfile.write(payload)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections close after a minute
    # Headers and body go out as two writes; with Nagle on, keep-alive clients wait ~40 ms
    # for a delayed ACK on every request.
    disable_nagle_algorithm = True
    sim: GitHubSimulator

    def _any(self) -> None:
        try:
            self.sim._serve(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


def _token(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return "*" in candidates or etag in candidates

