"""``cvf rfc tick`` (close comment periods, send reminders) and ``cvf rfc stats``.

``tick`` is what a scheduled workflow runs; ``--now`` and ``--dry-run`` let a person see
what a tick at some moment would do without writing anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import click

from bot.cli import CliState, pass_state
from bot.errors import InputError
from bot.github.port import GitHubError, GitHubPort
from bot.rfc.document import load_rfc
from bot.rfc.index import provide_stats
from bot.rfc.lint import directory_sources
from bot.rfc.stats import GovernanceStats, compute_stats, days, percent


def run_tick(state: CliState, *, repo: str | None, now: datetime, dry_run: bool,
             env: Mapping[str, str], factory: Callable[..., GitHubPort] | None = None,
             echo: Callable[[str], None] = click.echo) -> int:
    """One tick over one repository; returns the exit code."""
    from bot.github.dryrun import format_writes
    from bot.handlers.rfc import tick_repository

    target = repo or env.get("GITHUB_REPOSITORY", "")
    if not target or "/" not in target:
        raise InputError("no repository to tick",
                         hint="pass --repo OWNER/NAME or set GITHUB_REPOSITORY")
    if factory is None:
        from bot.github.factory import factory_from_config

        factory = factory_from_config(state.config, env)
    gh = factory(target, None, dry_run=dry_run)
    dsn = env.get(str(state.config.section("server")["queue_dsn_env"]), "")
    try:
        if dsn:  # scale-out: one replica ticks at a time, wherever cron runs this
            from bot.queue.store import DeliveryStore

            store = DeliveryStore(dsn, pool_size=1)
            try:
                store.migrate()
                with store.tick_turn(f"rfc-tick:{target}", 0) as mine:
                    if not mine:
                        echo("tick skipped: another replica is ticking now (advisory lock)")
                        return 0
                    report = tick_repository(gh, state.config, now)
            finally:
                store.close()
        else:
            report = tick_repository(gh, state.config, now)
    except GitHubError as exc:
        raise InputError(str(exc)) from None
    moved = 0
    for result in report.synced:
        changes = [e for e in result.new_entries if e.from_state != e.to_state]
        moved += len(changes)
        for entry in changes:
            echo(f"#{result.number}: {entry.from_state} -> {entry.to_state} ({entry.command})")
        if not changes:
            echo(f"#{result.number}: {result.state} (status refreshed)")
    when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    echo(f"tick at {when}: {report.checked} open RFC(s) checked, {len(report.synced)} "
         f"updated, {moved} transition(s); {gh.stats.requests} API call(s), "
         f"{gh.stats.writes} write(s)" + (" (dry run: nothing was written)" if dry_run else ""))
    if dry_run and gh.stats.write_log:
        echo(format_writes(gh.stats.write_log))
    return 0


def load_stats(state: CliState) -> GovernanceStats:
    root = Path(state.root)
    rfc = state.config.rfc
    docs = [load_rfc(file, display=shown)
            for file, shown in directory_sources(root, rfc["directory"])]
    return compute_stats(docs, rfc)


def format_stats(stats: GovernanceStats) -> str:
    lines = [f"RFCs: {stats.total}"]
    if stats.by_status:
        lines.append("by status: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                               for k, v in stats.by_status.items()))
    for rfc_type, counts in stats.by_type.items():
        lines.append(f"  {rfc_type}: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                   for k, v in counts.items()))
    lines.append(f"decided: {stats.decided} ({stats.accepted} accepted, {stats.rejected} "
                 f"rejected); acceptance rate {percent(stats.acceptance_rate)}")
    lines.append(f"approval rate of binding votes: {percent(stats.approval_rate)}")
    for rfc_type, rate in stats.approval_rate_by_type.items():
        lines.append(f"  {rfc_type}: {percent(rate)}")
    lines.append(f"median time from opening to decision: "
                 f"{days(stats.median_days_to_decision)}")
    if stats.recent:
        lines.append("recent decisions:")
        for row in stats.recent:
            lines.append(f"  {row.number:04d} {row.status:<8} {row.date or '?':<10} "
                         f"approval {percent(row.approval_rate):>4}  {row.title}")
    return "\n".join(lines)


def register(cli: click.Group) -> None:
    group = cli.commands.get("rfc")
    if not isinstance(group, click.Group):
        raise RuntimeError("bot.commands.rfc must be registered before rfc_governance")
    # The RFC index (`cvf rfc index`, `cvf check`) shows the same statistics.
    provide_stats(compute_stats)

    @group.command("tick")
    @click.option("--now", "now_text", default=None, metavar="ISO",
                  help="Act as if it were this UTC time, e.g. 2026-12-01T09:00:00Z.")
    @click.option("--dry-run", is_flag=True,
                  help="Read from GitHub but write nothing; print each write instead.")
    @click.option("--repo", default=None, metavar="OWNER/NAME",
                  help="Repository (default: $GITHUB_REPOSITORY).")
    @pass_state
    def tick_command(state: CliState, now_text: str | None, dry_run: bool,
                     repo: str | None) -> None:
        """Move RFCs whose comment period ended to review; post due reminders; count votes
        cast by reaction since the last update."""
        from bot.commands.rfc import parse_now

        code = run_tick(state, repo=repo, now=parse_now(now_text), dry_run=dry_run,
                        env=os.environ)
        raise SystemExit(code)

    @group.command("stats")
    @click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
                  show_default=True, help="Output format.")
    @pass_state
    def stats_command(state: CliState, output: str) -> None:
        """Governance statistics: counts, decisions, time to decision, approval rates."""
        stats = load_stats(state)
        if output == "json":
            click.echo(json.dumps(stats.as_dict(), indent=2))
        else:
            click.echo(format_stats(stats))
