"""``cvf metrics``: ingest, export, collect, report, alerts and sync of execution metrics."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bot.cli import CliState, pass_state
from bot.durations import parse_duration
from bot.errors import CvfError, InputError
from bot.github.dryrun import format_writes
from bot.github.port import GitHubError, GitHubPort
from bot.metrics.ingest import read_lines
from bot.metrics.store import MetricsStore

PERIOD_CHOICES = ("1h", "24h", "7d", "30d")


def _now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f'--now: expected an ISO time like "2026-03-01T12:00:00Z", '
                         f'got "{value}"') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _store(state: CliState, path: str | None) -> MetricsStore:
    from bot.handlers.metrics import store_for
    from bot.metrics.store import open_store

    return open_store(path) if path else store_for(state.config)


def _port(state: CliState, repo: str | None, dry_run: bool, env: Mapping[str, str],
          factory: Callable[..., GitHubPort] | None = None) -> GitHubPort:
    target = repo or env.get("GITHUB_REPOSITORY", "")
    if "/" not in target:
        raise InputError("no repository to read", hint="pass --repo OWNER/NAME or set "
                                                        "GITHUB_REPOSITORY")
    if factory is None:
        from bot.github.factory import factory_from_config

        factory = factory_from_config(state.config, env)
    return factory(target, None, dry_run=dry_run)


store_option = click.option("--store", "store_path", metavar="PATH",
                            help="Metrics store file (default: metrics.store from the config).")
now_option = click.option("--now", "now_text", metavar="TIME", hidden=True,
                          help="Pretend it is this time (tests, previews).")


@click.group("metrics")
def metrics_group() -> None:
    """Execution metrics: store, reports, alerts."""


@metrics_group.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False,
                                                                   allow_dash=True))
@store_option
@pass_state
def ingest_command(state: CliState, files: tuple[str, ...], store_path: str | None) -> None:
    """Store execution records from JSONL FILES ("-" reads stdin).

    One JSON object per line, as the record contract in bot/metrics/README.md ("The
    execution record") defines it. Each file is stored whole or not at all: a bad line
    stops it with the line number and the reason. A line may hold at most 1 MiB (one
    record is a few hundred bytes); a longer one stops the import, so memory stays
    bounded whatever the input. Records whose id is already stored are skipped, so
    re-running an import is harmless.
    """
    store = _store(state, store_path)
    try:
        for name in files:
            if name == "-":
                result = store.ingest_lines(read_lines(sys.stdin.buffer, "stdin"),
                                            where="stdin")
            else:
                path = Path(name)
                if not path.is_file():
                    raise InputError("file not found", where=name,
                                     hint="give the path of a .jsonl file")
                with path.open("rb") as fh:
                    result = store.ingest_lines(read_lines(fh, name), where=name)
            click.echo(f"{name}: {result.added} record(s) added, {result.duplicates} "
                       f"already stored")
    finally:
        store.close()


@metrics_group.command("export")
@click.option("--since", metavar="WHEN", help='Start: ISO time, date, or a duration ago ("7d").')
@click.option("--until", metavar="WHEN", help="End (exclusive); default: no end.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
@store_option
@now_option
@pass_state
def export_command(state: CliState, since: str | None, until: str | None, output: str | None,
                   store_path: str | None, now_text: str | None) -> None:
    """Write stored records as JSONL, oldest first, unknown fields included."""
    from bot.metrics.aggregate import parse_moment

    now = _now(now_text)
    start = parse_moment(since, now=now) if since else None
    end = parse_moment(until, now=now, what="--until") if until else None
    store = _store(state, store_path)
    try:
        if output:
            with open(output, "w", encoding="utf-8") as fh:
                count = store.export_jsonl(fh, start, end)
            click.echo(f"{count} record(s) written to {output}", err=True)
        else:
            store.export_jsonl(sys.stdout, start, end)
    finally:
        store.close()


@metrics_group.command("report")
@click.option("--period", type=click.Choice(PERIOD_CHOICES),
              help="Default: metrics.default_period.")
@click.option("--since", metavar="WHEN", help="Custom window start (instead of --period).")
@click.option("--until", metavar="WHEN", help="Custom window end, exclusive (default: now).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json", "html"]),
              default="markdown", show_default=True)
@click.option("--role", type=click.Choice(["executive", "operator", "compliance"]),
              help="Only the sections this audience needs (default: all three).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to FILE (default: stdout).")
@click.option("--append", is_flag=True, help="Append to --output (e.g. $GITHUB_STEP_SUMMARY).")
@click.option("--alerts/--no-alerts", default=True, show_default=True,
              help="Include alerts firing now.")
@click.option("--drill", type=click.Choice(["decisions", "approvals", "executions"]),
              help="Also list the items behind the figures: one row each, with its link.")
@click.option("--filter", "filter_text", metavar="'KEY:VALUE ...'",
              help="Which items --drill lists, e.g. 'state:pending' or "
                   "'skill:deploy success:false'.")
@store_option
@now_option
@pass_state
def report_command(state: CliState, period: str | None, since: str | None, until: str | None,
                   fmt: str, role: str | None, output: str | None, append: bool, alerts: bool,
                   drill: str | None, filter_text: str | None,
                   store_path: str | None, now_text: str | None) -> None:
    """Report a period as markdown (PR comments, job summaries), JSON or a static HTML page.

    \b
    Examples:
      cvf metrics report --period 7d
      cvf metrics report --format html -o dashboard.html
      cvf metrics report -o "$GITHUB_STEP_SUMMARY" --append
      cvf metrics report --drill decisions --filter state:pending
      cvf metrics report --drill executions --filter "skill:deploy success:false"
    """
    if filter_text and not drill:
        raise InputError("--filter selects the items of a drill-down",
                         hint="add --drill decisions, approvals or executions")
    text = build_report(state, period=period, since=since, until=until, fmt=fmt, role=role,
                        with_alerts=alerts, store_path=store_path, now=_now(now_text),
                        drill=drill, filter_text=filter_text)
    if output:
        with open(output, "a" if append else "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"report written to {output}", err=True)
    else:
        click.echo(text, nl=False)


def build_report(state: CliState, *, period: str | None, since: str | None, until: str | None,
                 fmt: str, role: str | None, with_alerts: bool, store_path: str | None,
                 now: datetime, served: bool = False, drill: str | None = None,
                 filter_text: str | None = None) -> str:
    from bot.metrics.aggregate import dashboard, parse_moment, window
    from bot.metrics.alerts import evaluate
    from bot.metrics.drilldown import drill as drill_down
    from bot.metrics.report import render_report

    settings = state.config.section("metrics")
    win = window(period or settings["default_period"], now=now,
                 since=parse_moment(since, now=now) if since else None,
                 until=parse_moment(until, now=now, what="--until") if until else None)
    store = _store(state, store_path)
    try:
        view = dashboard(store, win)
        found = evaluate(store, settings, now) if with_alerts else []
        items = drill_down(store, win.since, win.until, drill, filter_text) if drill else None
    finally:
        store.close()
    return render_report(view, fmt, alerts=found, role=role, served=served, drill=items,
                         unhealthy_error_rate=float(settings["agents"]["unhealthy_error_rate"]))


@metrics_group.command("alerts")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--publish", is_flag=True,
              help="Open/update/close the GitHub issues (as the tick does).")
@click.option("--repo", metavar="OWNER/NAME", help="Repository (default: $GITHUB_REPOSITORY).")
@click.option("--dry-run", is_flag=True, help="With --publish: show the writes, make none.")
@store_option
@now_option
@pass_state
def alerts_command(state: CliState, fmt: str, publish: bool, repo: str | None, dry_run: bool,
                   store_path: str | None, now_text: str | None) -> None:
    """Evaluate the alerts now; exit code 2 when any fires (for scripts)."""
    import json

    from bot.metrics.alerts import evaluate

    now = _now(now_text)
    store = _store(state, store_path)
    try:
        found = evaluate(store, state.config.section("metrics"), now)
        if fmt == "json":
            click.echo(json.dumps([a.to_json() for a in found], indent=2))
        elif not found:
            click.echo("no alerts firing")
        for alert in found if fmt == "text" else []:
            click.echo(f"{alert.severity}: {alert.key}: {alert.reason}")
        if publish:
            from bot.handlers.metrics import publish_alerts

            gh = _port(state, repo, dry_run, os.environ)
            try:
                done = publish_alerts(gh, store, state.config, found, now)
            except GitHubError as exc:
                raise InputError(str(exc)) from None
            click.echo(f"issues: {len(done['firing'])} open, {len(done['closed'])} closed, "
                       f"{len(done['proposed'])} RFC draft(s); {gh.stats.requests} API "
                       f"call(s), {gh.stats.writes} write(s)"
                       + (" (dry run: nothing was written)" if dry_run else ""), err=True)
            if dry_run and gh.stats.write_log:
                click.echo(format_writes(gh.stats.write_log))
    finally:
        store.close()
    if found:
        sys.exit(2)


@metrics_group.command("collect")
@click.option("--since", default=None, metavar="DURATION",
              help="How far back to read workflow runs (default: metrics.collect.since).")
@click.option("--pull", "pulls", type=int, multiple=True, metavar="N",
              help="Also collect the reviews of pull request N (repeatable).")
@click.option("--repo", metavar="OWNER/NAME", help="Repository (default: $GITHUB_REPOSITORY).")
@store_option
@now_option
@pass_state
def collect_command(state: CliState, since: str | None, pulls: tuple[int, ...],
                    repo: str | None, store_path: str | None, now_text: str | None) -> None:
    """Store workflow runs of routed heads (executions of the chosen agent) and PR reviews
    (approvals) from GitHub."""
    run_collect(state, since=since, pulls=pulls, repo=repo, store_path=store_path,
                now=_now(now_text), env=os.environ)


def run_collect(state: CliState, *, since: str | None, pulls: tuple[int, ...],
                repo: str | None, store_path: str | None, now: datetime,
                env: Mapping[str, str], factory: Callable[..., GitHubPort] | None = None,
                echo: Callable[[str], Any] = click.echo) -> None:
    from bot.handlers.metrics import collect

    span = since or state.config.section("metrics")["collect"]["since"]
    try:
        start = now - parse_duration(span)
    except CvfError as exc:
        raise InputError(f"--since: {exc.message}") from None
    gh = _port(state, repo, False, env, factory)
    store = _store(state, store_path)
    try:
        result, runs, prs = collect(gh, store, state.config, since=start, pulls=pulls)
    except GitHubError as exc:
        raise InputError(str(exc)) from None
    finally:
        store.close()
    echo(f"collected {runs} workflow run(s) and {prs} pull request(s): {result.added} "
         f"record(s) added, {result.duplicates} already stored; {gh.stats.requests} API call(s)")


@metrics_group.command("sync")
@click.argument("direction", type=click.Choice(["pull", "push"]))
@click.option("--repo", metavar="OWNER/NAME", help="Repository (default: $GITHUB_REPOSITORY).")
@click.option("--dry-run", is_flag=True, help="Show the writes a push would make.")
@store_option
@now_option
@pass_state
def sync_command(state: CliState, direction: str, repo: str | None, dry_run: bool,
                 store_path: str | None, now_text: str | None) -> None:
    """Keep the store between Action runs on a data branch (metrics.persistence).

    \b
    In a workflow: `cvf metrics sync pull` first, then ingest/collect/report, then
    `cvf metrics sync push`. Files are <directory>/YYYY-MM-DD.jsonl on the branch,
    merged by record id, so concurrent or repeated runs never duplicate a record.
    """
    run_sync(state, direction, repo=repo, dry_run=dry_run, store_path=store_path,
             now=_now(now_text), env=os.environ)


def run_sync(state: CliState, direction: str, *, repo: str | None, dry_run: bool,
             store_path: str | None, now: datetime, env: Mapping[str, str],
             factory: Callable[..., GitHubPort] | None = None,
             echo: Callable[[str], Any] = click.echo) -> None:
    from bot.handlers.metrics import push_alert_memory, sync_pull, sync_push

    gh = _port(state, repo, dry_run, env, factory)
    store = _store(state, store_path)
    try:
        if direction == "pull":
            result = sync_pull(gh, store, state.config, now)
            echo(f"restored {result.added} record(s) ({result.duplicates} already stored)")
        else:
            written = sync_push(gh, store, state.config, remember=not dry_run)
            if not dry_run:
                push_alert_memory(gh, store, state.config)
            total = sum(written.values())
            echo(f"{'would push' if dry_run else 'pushed'} {total} record(s) to "
                 f"{len(written)} file(s) on "
                 f"{state.config.section('metrics')['persistence']['branch']}")
            if dry_run and gh.stats.write_log:
                echo(format_writes(gh.stats.write_log))
    except GitHubError as exc:
        raise InputError(str(exc)) from None
    finally:
        store.close()


@metrics_group.command("migrate")
@click.option("--from", "source", required=True, metavar="PATH|DSN",
              help="The store to copy from (a SQLite file such as .cvf/metrics.db).")
@click.option("--to", "target", required=True, metavar="DSN|PATH",
              help="The store to copy into (postgresql://user:password@host/db).")
def migrate_command(source: str, target: str) -> None:
    """Copy a metrics store into another (SQLite to PostgreSQL, or back).

    Every record of every kind moves in its original order, with the open alert issues
    and the sync state; the target builds its own rollups, so its reports equal the
    source's. Records already in the target are skipped: an interrupted run can be
    repeated. Then set metrics.store (or CVF_METRICS_DSN) to the target.
    """
    from pathlib import Path

    from bot.metrics.pgstore import migrate_store
    from bot.metrics.store import open_store
    from bot.pg import is_dsn

    if not is_dsn(source) and not Path(source).is_file():
        raise InputError(f"--from {source}: no such metrics store file",
                         hint="give the SQLite file (e.g. .cvf/metrics.db) or a DSN")
    if source == target:
        raise InputError("--from and --to name the same store")
    src, dst = open_store(source), open_store(target)
    try:
        before = dst.count()
        result = migrate_store(src, dst)
        total = src.count()
        after = dst.count()
    finally:
        src.close()
        dst.close()
    click.echo(f"migrated {result.added} record(s) ({result.duplicates} already in the "
               f"target); source {total}, target {before} -> {after} record(s)")


def register(cli: click.Group) -> None:
    cli.add_command(metrics_group)
