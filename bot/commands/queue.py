"""``cvf worker`` and ``cvf deliveries``: the scale-out side of the webhook host."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import click

from bot.cli import CliState, pass_state
from bot.config import Config
from bot.durations import parse_duration
from bot.errors import InputError


def queue_dsn(config: Config, env: Mapping[str, str]) -> str:
    name = str(config.section("server")["queue_dsn_env"])
    dsn = env.get(name, "")
    if not dsn:
        raise InputError(f"no delivery queue is configured: {name} is not set",
                         hint=f"export {name}=postgresql://user:password@host:5432/db "
                              "(the DSN the webhook replicas use)")
    return dsn


def register(cli: click.Group) -> None:
    @cli.command("worker")
    @click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64),
                  help="Deliveries this process runs at once (each in a thread).")
    @click.option("--repo", "repos", multiple=True, metavar="OWNER/NAME",
                  help="Repositories the tick visits in token mode (App mode finds them).")
    @click.option("--no-tick", is_flag=True,
                  help="Never run the periodic tick here (another replica runs it).")
    @click.option("--heartbeat", default=10.0, show_default=True, type=float,
                  help="Seconds between this worker's heartbeats.")
    @click.option("--stalled-after", default=30.0, show_default=True, type=float,
                  help="A worker silent this many seconds is dead: its deliveries are retried.")
    @click.option("--name", default=None, help="Worker name in logs (default: host:pid).")
    @pass_state
    def worker(state: CliState, concurrency: int, repos: tuple[str, ...], no_tick: bool,
               heartbeat: float, stalled_after: float, name: str | None) -> None:
        """Run queued webhook deliveries (scale-out mode) until SIGINT/SIGTERM.

        Start any number, on any machine, with the same config and the queue DSN. Each
        delivery runs the same handlers as the webhook app; deliveries on one pull request
        or issue run one at a time in arrival order; a delivery whose worker dies is
        retried; one failing every attempt is dead-lettered (`cvf deliveries`). The tick
        (server.tick_interval) runs on one worker at a time.
        """
        import socket

        from bot.events import load_handlers, utcnow
        from bot.github.factory import factory_from_config
        from bot.github.ticker import run_ticks
        from bot.queue.store import DeliveryStore
        from bot.queue.worker import DeliveryRunner, WorkerSettings, run_worker

        config = state.config
        dsn = queue_dsn(config, os.environ)
        server = config.section("server")
        settings = WorkerSettings(
            concurrency=concurrency, attempts=int(server["queue_attempts"]),
            retry_wait=int(parse_duration(str(server["queue_retry_wait"])).total_seconds()),
            heartbeat=heartbeat, stalled_after=stalled_after,
            tick_interval=None if no_tick else
            parse_duration(str(server["tick_interval"])).total_seconds(),
            name=name or f"{socket.gethostname()}:{os.getpid()}")
        router = load_handlers()
        factories: list[object] = []

        def factory() -> object:
            if not factories:
                factories.append(factory_from_config(config, os.environ))
            return factories[0]

        runner = DeliveryRunner(store=DeliveryStore(dsn, pool_size=2 * concurrency + 2),
                                config=config, router=router,
                                factory=factory,  # type: ignore[arg-type]
                                clock=utcnow)

        def tick() -> None:
            from bot.github.delivery import RepoConfigCache

            built = factory()
            targets = built.repositories(repos) if hasattr(built, "repositories") \
                else [(r, None) for r in repos]
            run_ticks(router, built, targets, RepoConfigCache(config), utcnow())  # type: ignore[arg-type]

        from bot.app import _setup_logging

        _setup_logging()  # one JSON line per delivery on stderr, as the webhook app logs
        click.echo(f"worker {settings.name}: {concurrency} at a time"
                   + ("" if no_tick else f", tick every {settings.tick_interval:.0f}s"),
                   err=True)
        run_worker(dsn, runner, settings, tick=None if no_tick else tick)

    @cli.group("deliveries")
    def deliveries() -> None:
        """Webhook deliveries in the queue (scale-out mode): list, replay dead ones."""

    @deliveries.command("list")
    @click.option("--status", type=click.Choice(["queued", "running", "retrying", "done",
                                                 "dead"]),
                  help="Only deliveries in this state (dead = failed every attempt).")
    @click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    @pass_state
    def list_command(state: CliState, status: str | None, limit: int, as_json: bool) -> None:
        """The newest deliveries, with their state, attempts and last error."""
        from bot.queue.store import DeliveryStore
        from bot.queue.worker import ensure_schema

        store = DeliveryStore(queue_dsn(state.config, os.environ), pool_size=1)
        try:
            ensure_schema(store)
            found = store.list(status, limit)
            counts = store.counts()
        finally:
            store.close()
        if as_json:
            for delivery in found:
                click.echo(json.dumps(delivery.as_json()))
            return
        click.echo("  ".join(f"{name}: {count}" for name, count in counts.items()))
        for d in found:
            subject = f"{d.repo}#{d.number}" if d.number is not None else d.repo
            event = f"{d.event}.{d.action}" if d.action else d.event
            click.echo(f"{d.id}  {d.status:<8}  {d.attempts} attempt(s)  {event}  {subject}  "
                       f"{d.received_at:%Y-%m-%d %H:%M:%S}")
            if d.last_error and d.status != "done":
                click.echo(f"    last error: {d.last_error}")

    @deliveries.command("retry")
    @click.argument("ids", nargs=-1)
    @click.option("--all-dead", is_flag=True, help="Replay every dead delivery.")
    @pass_state
    def retry_command(state: CliState, ids: tuple[str, ...], all_dead: bool) -> None:
        """Replay dead deliveries: each is queued again with fresh attempts."""
        from bot.queue.worker import DeliveryQueue

        if bool(ids) == all_dead:
            raise InputError("name the deliveries to replay, or pass --all-dead",
                             hint="see them with `cvf deliveries list --status dead`")
        queue = DeliveryQueue(queue_dsn(state.config, os.environ))
        try:
            queue.app  # noqa: B018  (opens the pool and makes sure the schema exists)
            targets = list(ids) or [d.id for d in queue.store.list("dead", limit=100_000)]
            problems = []
            for delivery_id in targets:
                found = queue.store.get(delivery_id)
                if found is None:
                    problems.append(f"{delivery_id}: no such delivery")
                elif found.status != "dead":
                    problems.append(f"{delivery_id}: is {found.status}, not dead")
                else:
                    queue.store.requeue(delivery_id)
                    queue.requeue(delivery_id)
                    click.echo(f"queued {delivery_id} again")
        finally:
            queue.close()
        if not targets:
            click.echo("no dead deliveries")
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        if problems:
            raise SystemExit(1)
