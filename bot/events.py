"""Events and the router that maps ``(event, action)`` to handlers.

Handlers register with a decorator in the module of their concern (``bot/handlers/``).
Both hosts — the webhook app and the Action/CLI — build an ``Event`` and call
``dispatch``; a handler never knows which host runs it.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.config import Config
from bot.github.port import GitHubPort


def utcnow() -> datetime:
    """The one clock every host reads; tests and ``--now`` replace it."""
    return datetime.now(UTC)


@dataclass
class Event:
    name: str  # X-GitHub-Event, e.g. "issue_comment"
    payload: dict[str, Any]
    config: Config
    delivery_id: str = ""
    now: datetime = field(default_factory=utcnow)
    # What handlers report back to the host: the Action writes ``outputs`` to
    # $GITHUB_OUTPUT (keys such as "rfc-status", "decision", "risk-level") and ``summary``
    # to $GITHUB_STEP_SUMMARY; the webhook app logs them. Handlers never write files.
    outputs: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return action if isinstance(action, str) else None

    @property
    def repo(self) -> str:
        return str((self.payload.get("repository") or {}).get("full_name", ""))

    @property
    def sender(self) -> str:
        return str((self.payload.get("sender") or {}).get("login", ""))

    @property
    def sender_is_bot(self) -> bool:
        sender = self.payload.get("sender") or {}
        bot_login = str(self.config.section("github")["bot_login"]).lower()
        login = str(sender.get("login", "")).lower()
        return login == bot_login or login == bot_login.removesuffix("[bot]")

    @property
    def installation_id(self) -> int | None:
        installation = self.payload.get("installation") or {}
        value = installation.get("id")
        return value if isinstance(value, int) else None


Handler = Callable[[Event, GitHubPort], None]
Tick = Callable[[GitHubPort, Config, datetime], None]


@dataclass(frozen=True)
class OwnCommit:
    """A commit the bot itself pushed to a pull request's branch (front matter...)."""

    parent: str  # the head the bot's commit was made on
    sha: str  # the bot's commit: the branch's new head


# Puts one concern's check back on a pull request's head: ``(event, port, number,
# own_commit)``; ``own_commit`` is set when the head is a commit the bot just made.
CheckRefresher = Callable[[Event, GitHubPort, int, "OwnCommit | None"], None]


class Router:
    """``(event, action)`` -> handlers, plus the periodic ticks."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str | None], list[Handler]] = defaultdict(list)
        self.ticks: list[Tick] = []
        self._checks: list[tuple[Callable[[Config], str], CheckRefresher]] = []

    def register(self, event: str, *actions: str) -> Callable[[Handler], Handler]:
        """``@router.register("pull_request", "opened", "synchronize")``; no actions = all."""

        def decorate(func: Handler) -> Handler:
            for action in actions or (None,):
                self._handlers[(event, action)].append(func)
            return func

        return decorate

    def tick(self, func: Tick) -> Tick:
        self.ticks.append(func)
        return func

    def check(self, name_of: Callable[[Config], str]) -> Callable[[CheckRefresher],
                                                                  CheckRefresher]:
        """Register how a concern re-evaluates the check named ``name_of(config)``: used
        after the bot's own commits, for the Re-run button and for ``/recheck``."""

        def decorate(func: CheckRefresher) -> CheckRefresher:
            self._checks.append((name_of, func))
            return func

        return decorate

    def refreshers(self, config: Config, name: str | None = None) -> list[CheckRefresher]:
        """Every check refresher, or the one owning the check called ``name``."""
        return [func for name_of, func in self._checks if name is None or name_of(config) == name]

    def handlers_for(self, event: Event) -> list[Handler]:
        found = list(self._handlers.get((event.name, None), []))
        if event.action is not None:
            found += self._handlers.get((event.name, event.action), [])
        return found


router = Router()

# Concern modules whose import registers handlers on ``router``.
HANDLER_MODULES: tuple[str, ...] = ("routing", "rfc", "metrics", "certification", "checks",
                                    "catchup")


def load_handlers() -> Router:
    for name in HANDLER_MODULES:
        importlib.import_module(f"bot.handlers.{name}")
    return router
