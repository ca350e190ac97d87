"""Running one event through the router: the part both hosts share.

The webhook app and ``cvf handle`` differ in how an event arrives; what happens next —
skip the bot's own events, find the handlers, run each one, count the API calls — is
here, so the two hosts cannot drift apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import DEFAULT_PATH, Config, parse_config, with_defaults
from bot.events import Event, Router
from bot.github.port import GitHubPort

log = logging.getLogger("cvf.delivery")

# Host-owned sections: a repository's config never picks the API URL, the credential
# variables or the server limits, or a pull request could redirect the bot's token.
HOST_SECTIONS = ("github", "server")


@dataclass
class Outcome:
    status: str  # "handled" | "ignored" | "no_handler" | "failed"
    handlers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def close_port(github: object) -> None:
    """Adapters hold a connection pool; fakes have nothing to close."""
    close = getattr(github, "close", None)
    if callable(close):
        close()


def handler_name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{getattr(func, '__qualname__', repr(func))}"


def is_bot_event(event: Event) -> bool:
    """Caused by the bot itself: sent by it, or the creation of a comment it wrote.

    A person editing or deleting the bot's comment is *not* the bot's doing: handlers
    see that event, so a tampered status comment can be noticed and rewritten.
    """
    if event.sender_is_bot:
        return True
    bot_login = str(event.config.section("github")["bot_login"]).lower()
    comment = event.payload.get("comment") or {}
    author = str((comment.get("user") or {}).get("login", "")).lower()
    return event.name.endswith("comment") and event.action == "created" \
        and bool(author) and author == bot_login


def plan(event: Event, router: Router) -> Outcome | None:
    """Decide without any API call whether there is work: the bot's own event, no handler."""
    if is_bot_event(event):
        return Outcome("ignored")
    if not router.handlers_for(event) or not event.repo:
        return Outcome("no_handler")
    return None


def dispatch(event: Event, github: GitHubPort, router: Router) -> Outcome:
    """Run every handler for ``event``; one failing handler does not stop the others."""
    if is_bot_event(event):
        return Outcome("ignored")
    handlers = router.handlers_for(event)
    if not handlers:
        return Outcome("no_handler")
    outcome = Outcome("handled")
    for handler in handlers:
        name = handler_name(handler)
        outcome.handlers.append(name)
        try:
            handler(event, github)
        except Exception as exc:  # a handler bug must not take the other concerns down
            log.exception("handler %s failed on delivery %s (%s.%s)", name,
                          event.delivery_id or "-", event.name, event.action or "-")
            outcome.errors.append(f"{name}: {type(exc).__name__}: {exc}")
    if outcome.errors:
        outcome.status = "failed"
    return outcome


class RepoConfigCache:
    """Each repository's ``.github/cvf.yml`` from its default branch, cached briefly.

    Payloads carry the default branch's name but not its head sha, so entries are keyed by
    repository and branch, dropped when a push to that branch arrives (keyed afterwards by
    the pushed sha) and otherwise re-read after ``ttl`` seconds. An absent file means the
    defaults; an invalid one raises ``ConfigError`` listing every problem.
    """

    def __init__(self, host: Config, *, ttl: float = 60.0, size: int = 256,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.ttl = ttl
        self.size = size
        self._monotonic = monotonic
        self._entries: dict[tuple[str, str], tuple[float, str, Config]] = {}
        self._lock = threading.Lock()

    def _merge(self, repo_config: Config) -> Config:
        data = dict(repo_config.data)
        for section in HOST_SECTIONS:
            data[section] = self.host.data[section]
        return Config(data=data, path=repo_config.path, root=repo_config.root)

    def note_push(self, event_name: str, payload: dict[str, Any]) -> None:
        """A push to the default branch may have changed the config: forget the entry."""
        if event_name != "push":
            return
        repo = str((payload.get("repository") or {}).get("full_name", ""))
        ref = str(payload.get("ref", "")).removeprefix("refs/heads/")
        with self._lock:
            self._entries.pop((repo, ref), None)

    def get(self, github: GitHubPort, payload: dict[str, Any]) -> Config:
        repository = payload.get("repository") or {}
        branch = repository.get("default_branch") or github.default_branch()
        key = (github.repo, str(branch))
        now = self._monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry and now - entry[0] < self.ttl:
                return entry[2]
        found = github.get_file(DEFAULT_PATH, ref=str(branch))
        if found is None:
            config = self._merge(Config(data=with_defaults({})))
            sha = ""
        else:
            config = self._merge(parse_config(found.text,
                                              source=f"{github.repo}:{DEFAULT_PATH}"))
            sha = found.sha
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (now, sha, config)
        return config
