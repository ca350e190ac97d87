"""``cvf worker`` and ``cvf deliveries``: the scale-out side of the webhook host."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import timedelta

import click

from bot.cli import CliState, pass_state
from bot.config import Config
from bot.durations import format_duration, parse_duration, shown_time
from bot.errors import ConfigError, CvfError, InputError

# GitHub lets an admin redeliver a delivery for 3 days (7 on GitHub Enterprise Server);
# the duplicate guard is the stored row, so it must outlive that window.
MIN_RETENTION = timedelta(days=3)


def queue_dsn(config: Config, env: Mapping[str, str]) -> str:
    name = str(config.section("server")["queue_dsn_env"])
    dsn = env.get(name, "")
    if not dsn:
        raise InputError(f"no delivery queue is configured: {name} is not set",
                         hint=f"export {name}=postgresql://user:password@host:5432/db "
                              "(the DSN the webhook replicas use)")
    return dsn


def queue_retention(config: Config) -> timedelta:
    """``server.queue_retention``, at least ``MIN_RETENTION``."""
    raw = str(config.section("server")["queue_retention"])
    value = parse_duration(raw)
    if value < MIN_RETENTION:
        raise ConfigError(
            f'server.queue_retention: "{raw}" is shorter than the 3 days GitHub lets an admin '
            "redeliver a delivery: a redelivered one would no longer be recognised as a "
            "duplicate once its row is pruned", where=config.path,
            hint='set it to at least "3d" (the default is "14d"; "7d" or more on GitHub '
                 "Enterprise Server)")
    return value


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
            retention=queue_retention(config).total_seconds(),
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
        """Webhook deliveries in the queue (scale-out mode): list, replay, prune, migrate."""

    @deliveries.command("list")
    @click.option("--status", type=click.Choice(["queued", "running", "retrying", "done",
                                                 "dead"]),
                  help="Only deliveries in this state (dead = failed every attempt).")
    @click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    @pass_state
    def list_command(state: CliState, status: str | None, limit: int, as_json: bool) -> None:
        """The newest deliveries, with their state, attempts and last error."""
        from bot.queue.schema import ensure_schema
        from bot.queue.store import DeliveryStore

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

    @deliveries.command("prune")
    @click.option("--older-than", metavar="DURATION",
                  help="Prune what finished longer ago than this, e.g. 14d "
                       "(default: server.queue_retention).")
    @click.option("--dead", is_flag=True,
                  help="Also prune dead deliveries (kept otherwise until replayed).")
    @pass_state
    def prune_command(state: CliState, older_than: str | None, dead: bool) -> None:
        """Delete done deliveries and finished queue jobs older than the retention.

        The worker does this by itself every hour with server.queue_retention; this runs
        it now, or with another age. Rows go in batches of 1,000, each its own short
        transaction, so workers and replicas keep running. A delivery GitHub sends again
        after its row is gone is taken as new (the handlers change nothing twice).
        """
        from bot.events import utcnow
        from bot.queue.schema import ensure_schema
        from bot.queue.store import DeliveryStore
        from bot.queue.worker import prune_now

        if older_than is None:
            age = queue_retention(state.config)
        else:
            try:
                age = parse_duration(older_than)
            except CvfError as exc:
                raise InputError(f"--older-than: {exc.message}", hint=exc.hint) from None
        store = DeliveryStore(queue_dsn(state.config, os.environ), pool_size=2)
        try:
            ensure_schema(store)
            deliveries, jobs = prune_now(store, age.total_seconds(), dead=dead)
            left_dead = store.counts()["dead"]
        finally:
            store.close()
        kinds = "done and dead" if dead else "done"
        click.echo(f"pruned {deliveries} {kinds} deliveries finished before "
                   f"{shown_time(utcnow() - age)} (older than {format_duration(age)})")
        click.echo(f"pruned {jobs} finished queue jobs")
        if left_dead:
            click.echo(f"{left_dead} dead deliveries kept: replay them with `cvf deliveries "
                       "retry --all-dead`" + ("" if dead else ", or prune them with --dead"))

    @deliveries.command("migrate")
    @click.option("--dry-run", is_flag=True, help="Only list the migrations that would run.")
    @click.option("--from", "start_from", metavar="X.Y.Z",
                  help="The procrastinate version that created the schema, for a schema the "
                       "bot has no record of (the start-up error says when).")
    @pass_state
    def migrate_command(state: CliState, dry_run: bool, start_from: str | None) -> None:
        """Upgrade procrastinate's tables to the installed procrastinate.

        Applies every pending migration file procrastinate ships, pre and post, in order,
        each in its own transaction, and records the level in cvf_schema. Workers and
        replicas apply pre-migrations by themselves when they start; run this once every
        replica and worker runs the new version (post-migrations), or with all of them
        stopped when a start was refused (an upgrade across several procrastinate
        versions).
        """
        from bot.queue.schema import label, migrate, parse_version
        from bot.queue.store import DeliveryStore

        declared = parse_version(start_from) if start_from else None
        store = DeliveryStore(queue_dsn(state.config, os.environ), pool_size=1)
        try:
            run = migrate(store, start_from=declared, dry_run=dry_run)
        finally:
            store.close()
        head = f"procrastinate {run.version}"
        if run.created:
            click.echo(f"{head}: created its schema (level {label(run.after)})")
            return
        if run.before is None:
            click.echo(f"{head}: no schema yet; it would be created (level of the newest "
                       "migration shipped)")
            return
        if run.recorded:
            click.echo(f"{head}: recorded {run.recorded}")
        if dry_run:
            click.echo(f"{head}: schema at {label(run.before)}, "
                       f"{len(run.waiting)} migration(s) to apply")
            for migration in run.waiting:
                click.echo(f"would apply {migration.name} ({migration.phase})")
            return
        if not run.applied:
            click.echo(f"{head}: schema at {label(run.before)}, up to date")
            return
        click.echo(f"{head}: schema at {label(run.before)}")
        for migration in run.applied:
            click.echo(f"applied {migration.name} ({migration.phase})")
        click.echo(f"schema now at {label(run.after)} ({len(run.applied)} migration(s) applied)")
