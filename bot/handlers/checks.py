"""Re-evaluating the bot's checks on request: the Re-run button and ``/recheck``.

GitHub sends ``check_run`` ``rerequested`` when someone presses "Re-run" on one of the
bot's checks and ``check_suite`` ``rerequested`` for "Re-run all checks"; ``/recheck`` in a
pull request comment asks the same. Each concern registers how to put its check back on
a pull request's head (``router.check``); this module only finds which pull requests and
which checks were asked for.
"""

from __future__ import annotations

from typing import Any

from bot.events import Event, router
from bot.github.port import GitHubPort
from bot.markdown import command_lines

RECHECK = "/recheck"


def _numbers(items: Any) -> list[int]:
    found = [item.get("number") for item in items or [] if isinstance(item, dict)]
    return sorted({n for n in found if isinstance(n, int) and n > 0})


@router.register("check_run", "rerequested")
def on_check_run_rerequested(event: Event, gh: GitHubPort) -> None:
    run = event.payload.get("check_run") or {}
    name = str(run.get("name", ""))
    numbers = _numbers(run.get("pull_requests")
                       or (run.get("check_suite") or {}).get("pull_requests"))
    _refresh(event, gh, numbers, name)


@router.register("check_suite", "rerequested")
def on_check_suite_rerequested(event: Event, gh: GitHubPort) -> None:
    suite = event.payload.get("check_suite") or {}
    _refresh(event, gh, _numbers(suite.get("pull_requests")), None)


@router.register("issue_comment", "created", "edited")
def on_recheck(event: Event, gh: GitHubPort) -> None:
    issue = event.payload.get("issue") or {}
    comment = event.payload.get("comment") or {}
    number = issue.get("number")
    if issue.get("pull_request") is None or not isinstance(number, int):
        return
    lines = [line.strip().lower() for _, line in command_lines(str(comment.get("body", "")))]
    if RECHECK not in lines:
        return
    _refresh(event, gh, [number], None)
    if isinstance(comment.get("id"), int):
        gh.add_comment_reaction(int(comment["id"]), "+1")


def _refresh(event: Event, gh: GitHubPort, numbers: list[int], name: str | None) -> None:
    refreshers = router.refreshers(event.config, name)
    for number in numbers:
        for refresh in refreshers:
            refresh(event, gh, number, None)
    if numbers and refreshers:
        what = name or "every check"
        event.summary.append(f"Re-evaluated {what} on " + ", ".join(f"#{n}" for n in numbers))
