"""Faults the simulator can inject, scoped by HTTP method and a path pattern.

A fault fires on the next ``times`` matching requests (``-1``: until cleared), then the
simulator answers normally again, which is how GitHub's own incidents end. ``hits``
says how often it fired, so a test can check the bot really went through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SECONDARY_MESSAGE = ("You have exceeded a secondary rate limit. Please wait a few minutes "
                     "before you try again.")
DOCS = "https://docs.github.com/rest"


@dataclass
class Fault:
    """One injected failure.

    kind:
      ``status``   answer ``status`` with ``body`` (5xx, 409, 422, 429 ...) and change nothing;
      ``secondary_rate_limit``  403 with GitHub's secondary-limit message and ``Retry-After``;
      ``primary_rate_limit``    403, ``X-RateLimit-Remaining: 0`` and a reset ``retry_after``
                                seconds ahead;
      ``slow``     wait ``delay`` seconds, then answer normally (a client timeout below the
                   delay sees a timeout; the request still takes effect);
      ``drop``     close the connection without an answer; with ``after_write`` the request
                   takes effect first (the client cannot tell whether it did).
    """

    kind: str
    method: str = "*"
    path: str = ".*"
    times: int = 1
    status: int = 502
    body: dict[str, Any] | None = None
    retry_after: float | None = None
    delay: float = 0.0
    after_write: bool = False
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("status", "secondary_rate_limit", "primary_rate_limit", "slow",
                             "drop"):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        self._pattern = re.compile(self.path)
        self.method = self.method.upper()

    @property
    def active(self) -> bool:
        return self.times != 0

    def matches(self, method: str, path: str) -> bool:
        return (self.active and (self.method in ("*", method.upper()))
                and self._pattern.search(path) is not None)

    def consume(self) -> None:
        self.hits += 1
        if self.times > 0:
            self.times -= 1

    def response_body(self) -> dict[str, Any]:
        if self.body is not None:
            return self.body
        if self.kind == "secondary_rate_limit":
            return {"message": SECONDARY_MESSAGE,
                    "documentation_url": "https://docs.github.com/rest/overview/"
                                         "rate-limits-for-the-rest-api#about-secondary-rate-limits"}
        if self.kind == "primary_rate_limit":
            return {"message": "API rate limit exceeded for installation ID 1.",
                    "documentation_url": "https://docs.github.com/rest/overview/"
                                         "rate-limits-for-the-rest-api"}
        messages = {409: "Conflict", 429: "Too Many Requests", 500: "Server Error",
                    502: "Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}
        if self.status >= 500:
            return {"message": messages.get(self.status, "Server Error")}
        return {"message": messages.get(self.status, "Injected failure"),
                "documentation_url": DOCS}
