"""The tick's sweep for commands whose delivery was lost.

A cancelled Action run or a dropped webhook loses a comment's event; the next event about
the same issue or pull request answers it (each concern replays the comment history), but
a thread nobody touches again would wait forever. So each tick lists the open issues and
pull requests updated since the last sweep (one listing) and runs the same catch-up there.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config import Config
from bot.events import Event, router
from bot.github.port import GitHubPort
from bot.handlers import certification, routing
from bot.handlers.metrics import store_for

SWEPT_UNTIL = "tick.commands_swept_until"
FIRST_SWEEP = timedelta(days=1)  # how far back a store with no sweep yet looks


@router.tick
def sweep_commands(port: GitHubPort, config: Config, now: datetime) -> None:
    """Answer the unanswered `/approve-risk`, `/cert …` and `/grade` comments of every open
    issue and pull request updated since the last sweep. The time is kept with the other
    ticks' (the metrics store's meta) and moves on only after a sweep succeeds."""
    store = store_for(config)
    try:
        last = store.get_meta(SWEPT_UNTIL)
        since = datetime.fromisoformat(last) if last else now - FIRST_SWEEP
        event = Event(name="tick", payload={}, config=config, now=now)
        for number, is_pull in port.list_updated_open(min(since, now)):
            if is_pull:
                routing.catch_up(event, port, number)
            certification.catch_up(event, port, number)
        if not getattr(port, "dry_run", False):
            store.set_meta(SWEPT_UNTIL, now.isoformat())
    finally:
        store.close()
