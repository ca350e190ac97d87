"""Conditional requests: a repeated read answered 304 costs GitHub no rate-limit point.

Every GET answer GitHub sends carries an ``ETag``; sending it back as ``If-None-Match``
gets ``304 Not Modified`` (no body, no point charged) while the resource is unchanged.
``ConditionalAdapter`` does this under PyGithub, at the ``requests`` transport: it adds
``If-None-Match`` when it holds the URL's last answer, and turns a 304 back into that
answer (with the fresh rate-limit headers), so PyGithub, its pagination and every
handler see exactly what a plain request returns. Every read is still sent and
revalidated — nothing is served from memory without asking, so no answer is ever stale
(which is why the ``Cache-Control: max-age=60`` freshness that CacheControl would honour
is not used). The adapter also counts, per delivery, the points spent (every answer but
a 304) and the last ``X-RateLimit-Remaining`` in ``CallStats``.

``EtagCaches`` keeps one bounded ``EtagCache`` per installation (per token in token
mode), in memory, for the life of the server process; the Action runs one process per
event and gains only within that run.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from github.Requester import HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass
from requests.structures import CaseInsensitiveDict

from bot.github.port import CallStats

CACHE_BYTES = 2 * 1024 * 1024  # per installation, bodies compressed (JSON shrinks ~10x)
INSTALLATIONS = 256  # caches kept; the least recently used installation's goes first


@dataclass(frozen=True)
class Answer:
    """One GET answer kept for revalidation (its body compressed: see ``pack``)."""

    etag: str
    headers: dict[str, str]
    body: bytes
    encoding: str | None

    @classmethod
    def pack(cls, etag: str, headers: dict[str, str], content: bytes,
             encoding: str | None) -> Answer:
        return cls(etag, headers, zlib.compress(content, 1), encoding)

    def content(self) -> bytes:
        return zlib.decompress(self.body)


class EtagCache:
    """The last answer per URL (and ``Accept``) of one installation, bounded in bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._answers: OrderedDict[tuple[str, str], Answer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    @property
    def size(self) -> int:
        return self._bytes

    def get(self, key: tuple[str, str]) -> Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: tuple[str, str], answer: Answer) -> None:
        cost = _cost(answer)
        with self._lock:
            self._drop(key)
            if cost > self.max_bytes:
                return
            self._answers[key] = answer
            self._bytes += cost
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._answers)))

    def _drop(self, key: tuple[str, str]) -> None:
        old = self._answers.pop(key, None)
        if old is not None:
            self._bytes -= _cost(old)


def _cost(answer: Answer) -> int:
    """Bytes an answer holds: its (compressed) body and its headers."""
    return len(answer.body) + sum(len(k) + len(v) for k, v in answer.headers.items())


class EtagCaches:
    """One ``EtagCache`` per installation (or token), at most ``installations`` of them."""

    def __init__(self, *, max_bytes: int = CACHE_BYTES,
                 installations: int = INSTALLATIONS) -> None:
        self.max_bytes = max_bytes
        self.installations = installations
        self._caches: OrderedDict[object, EtagCache] = OrderedDict()
        self._lock = threading.Lock()

    def for_installation(self, key: object) -> EtagCache:
        with self._lock:
            cache = self._caches.get(key)
            if cache is None:
                cache = self._caches[key] = EtagCache(self.max_bytes)
                while len(self._caches) > self.installations:
                    self._caches.popitem(last=False)
            self._caches.move_to_end(key)
            return cache


class ConditionalAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` transport that revalidates repeated GETs and counts points."""

    def __init__(self, cache: EtagCache | None, stats: CallStats, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cache = cache
        self.stats = stats

    def send(self, request: requests.PreparedRequest,  # type: ignore[override]
             **kwargs: Any) -> requests.Response:
        key = (str(request.url), str(request.headers.get("Accept", "")))
        kept = None
        if request.method == "GET" and self.cache is not None:
            kept = self.cache.get(key)
            if kept is not None:
                request.headers["If-None-Match"] = kept.etag
        response = super().send(request, **kwargs)
        self._count(response)
        if kept is not None and response.status_code == 304:
            if not _may_have_grown(kept, response, str(request.url)):
                self.stats.not_modified += 1
                return _replayed(kept, response)
            # A full last page is unchanged, yet items may follow it now: ask again
            # without the ETag, as the kept answer's pagination cannot be trusted.
            del request.headers["If-None-Match"]
            response = super().send(request, **kwargs)
            self._count(response)
        etag = response.headers.get("ETag")
        if request.method == "GET" and response.status_code == 200 and etag and \
                self.cache is not None:
            self.cache.put(key, Answer.pack(etag, dict(response.headers), response.content,
                                            response.encoding))
        return response

    def _count(self, response: requests.Response) -> None:
        # GitHub charges a point for every answer but a 304 to a conditional request.
        if response.status_code != 304:
            self.stats.points += 1
        remaining = response.headers.get("X-RateLimit-Remaining")
        if remaining is not None and remaining.isdigit():
            self.stats.rate_remaining = int(remaining)


def _may_have_grown(kept: Answer, not_modified: requests.Response, url: str) -> bool:
    """Whether a 304 leaves the list's pagination unknown.

    A page's ETag covers its body, not its ``Link`` header: page 1 of a thread that had
    exactly ``per_page`` comments is unchanged after a 101st is written, but now has a
    next page. When the 304 brings a ``Link`` header it is used (see ``_replayed``);
    when it brings none, the kept "no next page" is only trusted for a page that was
    not full.
    """
    if "Link" in not_modified.headers or 'rel="next"' in kept.headers.get("Link", ""):
        return False
    try:
        body = json.loads(kept.content())
    except ValueError:
        return False
    if isinstance(body, dict):  # {"total_count": …, "check_runs": […]} pages
        body = max((v for v in body.values() if isinstance(v, list)), key=len, default=None)
    if not isinstance(body, list) or not body:
        return False
    query = parse_qs(urlsplit(url).query)
    per_page = query.get("per_page", ["30"])[0]
    return len(body) >= (int(per_page) if per_page.isdigit() else 30)


def _replayed(kept: Answer, not_modified: requests.Response) -> requests.Response:
    """The kept answer as if GitHub had sent it again, with the 304's rate-limit headers
    (and its ``Link``, when it has one: pagination may have changed under an equal body)."""
    response = requests.Response()
    response.status_code = 200
    response.reason = "OK"
    response._content = kept.content()
    response.encoding = kept.encoding
    headers = CaseInsensitiveDict(kept.headers)
    for name, value in not_modified.headers.items():
        if name.lower().startswith("x-ratelimit") or name.lower() in ("date", "etag", "link"):
            headers[name] = value
    response.headers = headers
    response.url = not_modified.url
    response.request = not_modified.request
    response.connection = not_modified.connection
    response.elapsed = not_modified.elapsed
    return response


def install(requester: Any, cache: EtagCache | None, stats: CallStats) -> bool:
    """Make PyGithub's ``requester`` send its requests through ``ConditionalAdapter``.

    PyGithub builds its HTTP connection (and ``requests`` session) lazily from a
    connection class it keeps privately; this replaces that class for this requester
    only. Returns False, changing nothing, if a PyGithub version keeps it elsewhere
    (``tests/test_conditional.py`` catches that).
    """
    slot = "_Requester__connectionClass"
    base = getattr(requester, slot, None)
    if base not in (HTTPRequestsConnectionClass, HTTPSRequestsConnectionClass):
        return False

    class Conditional(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.adapter = ConditionalAdapter(cache, stats, max_retries=self.retry,
                                              pool_connections=self.pool_size,
                                              pool_maxsize=self.pool_size)
            self.session.mount(f"{self.protocol}://", self.adapter)

    setattr(requester, slot, Conditional)
    return True
