"""``cvf handle`` (the Action host) and ``cvf serve`` (the webhook host for development)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bot import jsonlimits
from bot.actionio import add_summary, set_output
from bot.cli import CliState, pass_state
from bot.durations import parse_duration
from bot.errors import InputError
from bot.events import Event, Router, load_handlers, utcnow
from bot.github.delivery import Outcome, close_port, dispatch, plan
from bot.github.dryrun import format_writes
from bot.github.factory import GitHubFactory, factory_from_config
from bot.github.port import GitHubError


def read_payload(path_text: str, workspace: Path, *, trusted: bool) -> dict[str, Any]:
    """The event JSON. A ``--payload`` path must stay inside the workspace; the runner's
    own ``GITHUB_EVENT_PATH`` (in its temp directory) is trusted as it comes."""
    path = Path(path_text)
    resolved = (path if path.is_absolute() else workspace / path).resolve()
    if not trusted and not resolved.is_relative_to(workspace.resolve()):
        raise InputError(f"payload file {path_text} is outside the workspace {workspace}",
                         hint="copy the payload into the repository checkout")
    try:
        text = resolved.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read payload file {path_text}: {exc.__class__.__name__}",
                         hint="give a JSON webhook payload file") from None
    try:
        payload = jsonlimits.loads(text)
    except ValueError as exc:
        raise InputError(f"payload file {path_text} is not JSON: {exc}",
                         where=path_text) from None
    if not isinstance(payload, dict):
        raise InputError(f"payload file {path_text} must hold a JSON object",
                         where=path_text)
    return payload


SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "pull_request.opened.json"


def sample_event(repo: str, number: int) -> dict[str, Any]:
    """The shipped sample ``pull_request.opened`` payload, pointed at one of your pull
    requests: ``cvf handle --sample --repo owner/name --pr 12 --dry-run`` shows what the
    bot would do there without writing anything."""
    if not re_repo(repo):
        raise InputError(f'--repo "{repo}" is not owner/name', hint="e.g. --repo octo-org/app")
    payload: dict[str, Any] = json.loads(SAMPLE.read_text("utf-8"))
    owner, _, name = repo.partition("/")
    payload["repository"].update(full_name=repo, name=name, owner={"login": owner})
    payload["number"] = payload["pull_request"]["number"] = number
    return payload


def re_repo(text: str) -> bool:
    owner, slash, name = text.partition("/")
    return bool(slash and owner and name and "/" not in name)


def handle_event(state: CliState, *, event_name: str | None, payload_path: str | None,
                 dry_run: bool, env: Mapping[str, str], router: Router,
                 payload: dict[str, Any] | None = None,
                 factory: GitHubFactory | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 echo: Callable[[str], None] = click.echo,
                 report: Callable[[Event, Outcome], None] | None = None) -> int:
    """Run one event through the handlers; returns the exit code. ``report`` receives the
    event (with the handlers' outputs) and the outcome instead of the runner files."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or os.getcwd())
    trusted = payload_path is None
    name = event_name or env.get("GITHUB_EVENT_NAME", "")
    path = payload_path or env.get("GITHUB_EVENT_PATH", "")
    if not name or (not path and payload is None):
        raise InputError("no event to handle",
                         hint="run inside GitHub Actions (GITHUB_EVENT_NAME and "
                              "GITHUB_EVENT_PATH), pass --event NAME --payload FILE, or try "
                              "--sample --repo OWNER/NAME --pr N --dry-run")
    if payload is None:
        payload = read_payload(path, workspace, trusted=trusted)
    event = Event(name=name, payload=payload, config=state.config, now=clock(),
                  delivery_id=env.get("GITHUB_RUN_ID", ""))
    repo = event.repo or env.get("GITHUB_REPOSITORY", "")
    label = f"{name}.{event.action}" if event.action else name
    probe = plan(event, router) if event.repo else None
    if probe is None and not repo:
        raise InputError("the payload names no repository",
                         hint="set GITHUB_REPOSITORY=owner/name")
    if probe is not None and probe.status == "ignored":
        echo(f"ignored {label}: sent by the bot itself")
        return 0
    if not router.handlers_for(event):
        echo(f"no handler for {label}")
        return 0
    github = (factory or factory_from_config(state.config, env))(
        repo, event.installation_id, dry_run=dry_run)
    try:
        outcome = dispatch(event, github, router)
    finally:
        close_port(github)
    stats = github.stats
    echo(f"{outcome.status} {label} for {repo}: {len(outcome.handlers)} handler(s), "
         f"{stats.requests} API call(s), {stats.writes} write(s)"
         + (" (dry run: nothing was written)" if dry_run else ""))
    if dry_run and stats.write_log:
        echo(format_writes(stats.write_log))
    if report is not None:
        report(event, outcome)
    else:
        write_action_files(event, env)
    for error in outcome.errors:
        echo(f"error: {error}")
    return 1 if outcome.errors else 0


def write_action_files(event: Event, env: Mapping[str, str]) -> None:
    """Hand the handlers' outputs and summary to the runner, when it asked for them."""
    for key, value in event.outputs.items():
        set_output(key, value, env)
    if event.summary:
        add_summary("\n\n".join(event.summary), env)


def register(cli: click.Group) -> None:
    @cli.command("handle")
    @click.option("--event", "event_name", metavar="NAME",
                  help="Event name (default: $GITHUB_EVENT_NAME).")
    @click.option("--payload", "payload_path", metavar="FILE",
                  help="Webhook payload JSON inside the workspace (default: $GITHUB_EVENT_PATH).")
    @click.option("--dry-run", is_flag=True,
                  help="Read from GitHub but write nothing; print each write instead.")
    @click.option("--sample", is_flag=True,
                  help="Use the shipped sample event (a pull request opened) for --repo and "
                       "--pr; needs --dry-run.")
    @click.option("--repo", metavar="OWNER/NAME", help="--sample: the repository.")
    @click.option("--pr", "number", type=int, metavar="N", help="--sample: the pull request.")
    @pass_state
    def handle(state: CliState, event_name: str | None, payload_path: str | None,
               dry_run: bool, sample: bool, repo: str | None, number: int | None) -> None:
        """Run the handlers once for one event (`cvf action` does this for command: handle).

        To see what the bot would do on one of your pull requests without writing
        anything: `cvf handle --sample --repo OWNER/NAME --pr 12 --dry-run` (with
        GITHUB_TOKEN set). The sample payload is bot/samples/pull_request.opened.json.
        """
        payload = None
        if sample:
            if not (repo and number and dry_run) or event_name or payload_path:
                raise InputError("--sample needs --repo OWNER/NAME, --pr N and --dry-run "
                                 "(and no --event/--payload)",
                                 hint="cvf handle --sample --repo octo-org/app --pr 12 --dry-run")
            payload, event_name = sample_event(repo, number), "pull_request"
        elif bool(event_name) != bool(payload_path):
            raise InputError("--event and --payload go together",
                             hint="pass both, or neither inside GitHub Actions")
        try:
            code = handle_event(state, event_name=event_name, payload_path=payload_path,
                                dry_run=dry_run, env=os.environ, router=load_handlers(),
                                payload=payload)
        except GitHubError as exc:
            raise InputError(str(exc)) from None
        raise SystemExit(code)

    @cli.command("tick")
    @click.option("--repo", "repos", multiple=True, metavar="OWNER/NAME",
                  help="Repository to tick (repeatable; default $GITHUB_REPOSITORY). A GitHub "
                       "App ticks every repository it is installed on.")
    @click.option("--now", "moment", metavar="TIME",
                  help="Act as if it were this UTC time, e.g. 2026-12-01T09:00:00Z.")
    @click.option("--dry-run", is_flag=True, help="Read from GitHub but write nothing.")
    @pass_state
    def tick(state: CliState, repos: tuple[str, ...], moment: str | None,
             dry_run: bool) -> None:
        """Run every periodic job once: RFC periods and reminders, reaction votes,
        metrics collection and alerts.

        \b
        What a scheduler runs beside gunicorn (cron: */5 * * * * cvf tick --repo o/n);
        `cvf serve` runs the same round every server.tick_interval by itself.
        """
        now = utcnow()
        if moment:
            try:
                now = datetime.fromisoformat(moment.replace("Z", "+00:00"))
            except ValueError:
                raise InputError(f"--now: expected a UTC time like 2026-12-01T09:00:00Z, "
                                 f"got '{moment}'") from None
            now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        raise SystemExit(tick_all(state, repos=repos, now=now, dry_run=dry_run,
                                  env=os.environ))

    @cli.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8000, show_default=True, type=int)
    @click.option("--no-ticker", is_flag=True, help="Do not run timed work (server.tick_interval).")
    @click.option("--repo", "repos", multiple=True, metavar="OWNER/NAME",
                  help="Repositories the ticker visits in token mode (App mode finds them).")
    @pass_state
    def serve(state: CliState, host: str, port: int, no_ticker: bool,
              repos: tuple[str, ...]) -> None:
        """Run the webhook app with Flask's development server (production: gunicorn)."""
        serve_app(state, host=host, port=port, ticker=not no_ticker, repos=repos)


def tick_all(state: CliState, *, repos: tuple[str, ...], now: datetime, dry_run: bool,
             env: Mapping[str, str], factory: GitHubFactory | None = None,
             echo: Callable[[str], None] = click.echo) -> int:
    """One round of every registered tick over each repository (every installation's in
    App mode); the same round `cvf serve` runs every server.tick_interval. Exit 1 when a
    tick failed (each failure is one JSON line on stderr)."""
    from bot.github.delivery import RepoConfigCache, close_port
    from bot.github.factory import factory_from_config
    from bot.github.port import GitHubPort
    from bot.github.ticker import run_ticks

    base = factory or factory_from_config(state.config, env)
    wanted = repos or ((env["GITHUB_REPOSITORY"],) if env.get("GITHUB_REPOSITORY") else ())
    targets = base.repositories(wanted) if hasattr(base, "repositories") \
        else [(r, None) for r in wanted]
    if not targets:
        raise InputError("no repository to tick",
                         hint="pass --repo OWNER/NAME (or set GITHUB_REPOSITORY); a GitHub "
                              "App ticks every repository it is installed on")
    opened: list[GitHubPort] = []

    def make(repo: str, installation_id: int | None = None, **_: object) -> GitHubPort:
        port = base(repo, installation_id, dry_run=dry_run)
        opened.append(port)
        return port

    try:
        failures = run_ticks(load_handlers(), make, targets, RepoConfigCache(state.config), now)
    finally:
        for port in opened:
            close_port(port)
    requests = sum(p.stats.requests for p in opened)
    writes = sum(p.stats.writes for p in opened)
    echo(f"tick at {now:%Y-%m-%dT%H:%M:%SZ}: {len(targets)} repositor"
         f"{'y' if len(targets) == 1 else 'ies'}, {failures} failed tick(s); {requests} API "
         f"call(s), {writes} write(s)" + (" (dry run: nothing was written)" if dry_run else ""))
    if dry_run:
        from bot.github.dryrun import format_writes

        for port in opened:
            if port.stats.write_log:
                echo(format_writes(port.stats.write_log))
    return 1 if failures else 0


def serve_app(state: CliState, *, host: str, port: int, ticker: bool, repos: tuple[str, ...],
              clock: Callable[[], datetime] = utcnow) -> None:
    from bot.app import create_app
    from bot.github.delivery import RepoConfigCache
    from bot.github.ticker import Ticker, run_ticks

    config = state.config
    app = create_app(config, clock=clock)
    cvf = app.extensions["cvf"]
    if ticker:
        interval = parse_duration(str(config.section("server")["tick_interval"])).total_seconds()
        configs = RepoConfigCache(config)

        def round_() -> None:
            factory = cvf.github_factory
            targets = factory.repositories(repos) if hasattr(factory, "repositories") \
                else [(r, None) for r in repos]
            run_ticks(cvf.router, factory, targets, configs, clock())

        dsn = os.environ.get(str(config.section("server")["queue_dsn_env"]), "")
        if dsn:  # scale-out: the round runs on one replica at a time, once per interval
            from bot.queue.store import DeliveryStore
            from bot.queue.worker import guarded_tick

            store = DeliveryStore(dsn, pool_size=1)
            store.migrate()
            Ticker(interval, lambda: guarded_tick(store, round_, interval)).start()
        else:
            Ticker(interval, round_).start()
        click.echo(f"ticker: every {interval:.0f}s", err=True)
    app.run(host=host, port=port, threaded=True)
