"""``cvf rfc new|lint|index`` and the top-level ``cvf check`` (config + RFCs + board).

Other RFC commands (governance: ``tick``, ``stats``) attach to ``rfc_group`` from their
own module, so this file only holds the document commands.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import click

from bot.cli import CliState, pass_state
from bot.config import Config
from bot.errors import ConfigError, CvfError, InputError
from bot.rfc.document import (
    RfcDocument,
    dump_field,
    format_timestamp,
    load_rfc,
    rfc_files,
    slugify,
)
from bot.rfc.index import TEMPLATE_FILE, index_stats, render_index
from bot.rfc.lint import (
    LintResult,
    Source,
    directory_sources,
    display_path,
    lint_sources,
)
from bot.rfc.lint_rules import MAX_TITLE, RULES
from bot.templating import render
from bot.yamlsource import load_located

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_NUMBERED = re.compile(r"^(\d{4,})-")


def parse_now(value: str | None) -> datetime:
    """``--now`` for previews and tests: an ISO time (``Z`` or offset; naive means UTC)."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"expected an ISO time like 2026-12-01T09:00:00Z, "
                                 f"got {value!r}", param_hint="--now") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@click.group("rfc")
def rfc_group() -> None:
    """RFC documents: create, lint and index them."""


# -- new ------------------------------------------------------------------------------
@rfc_group.command("new")
@click.argument("title")
@click.option("--type", "rfc_type", required=True, metavar="TYPE",
              help="One of rfc.types in the config, e.g. standard.")
@click.option("--author", "authors", multiple=True, metavar="LOGIN",
              help="GitHub login of an author (repeatable). Default: $GITHUB_ACTOR, "
                   "then `git config github.user`.")
@click.option("--now", "now_text", default=None, hidden=True)
@pass_state
def new_command(state: CliState, title: str, rfc_type: str, authors: tuple[str, ...],
                now_text: str | None) -> None:
    """Write a new draft RFC with the next free number from the template."""
    config = state.config.rfc
    title = " ".join(title.split())
    if not title or len(title) > MAX_TITLE:
        raise click.BadParameter(f"give a one-line title of 1 to {MAX_TITLE} characters",
                                 param_hint="TITLE")
    if rfc_type not in config["types"]:
        raise click.BadParameter(f"'{rfc_type}' is not one of: {', '.join(config['types'])}",
                                 param_hint="--type")
    logins = [a.lstrip("@") for a in authors] or _default_author(state.root)
    for login in logins:
        if not _LOGIN.match(login):
            raise click.BadParameter(f"'{login}' is not a GitHub login", param_hint="--author")
    directory = Path(state.root) / config["directory"]
    number = next_number(directory)
    file = directory / f"{number:04d}-{slugify(title)}.md"
    shown = display_path(file, Path(state.root))
    text = render("rfc/new-rfc.md.j2", number=number, title_line=dump_field("title", title)[0],
                  type=rfc_type, authors_line=dump_field("authors", logins)[0].split(": ", 1)[1],
                  created=parse_now(now_text).date().isoformat(), path=shown)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with file.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise CvfError(f"{shown} already exists", hint="pick another title") from None
    click.echo(f"created {shown} (RFC {number}, {rfc_type}, draft)")
    click.echo(f"next: write its sections, run `cvf rfc lint {shown}` and `cvf rfc index`, "
               f"then open a pull request")


def next_number(directory: Path) -> int:
    """One above the highest number used by a file name or an ``rfc:`` field."""
    highest = 0
    for file in rfc_files(directory):
        match = _NUMBERED.match(file.name)
        if match:
            highest = max(highest, int(match.group(1)))
        try:
            number = load_rfc(file).number
        except InputError:
            continue
        if number is not None:
            highest = max(highest, number)
    return highest + 1


def _default_author(root: str) -> list[str]:
    actor = os.environ.get("GITHUB_ACTOR", "").strip()
    if actor:
        return [actor]
    try:
        found = subprocess.run(["git", "config", "--get", "github.user"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        found = None
    if found is not None and found.stdout.strip():
        return [found.stdout.strip()]
    raise click.UsageError("who is the author? pass --author <github-login> "
                           "(or set `git config github.user`)")


# -- lint -----------------------------------------------------------------------------
def _list_rules(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for rule in RULES:
        click.echo(f"{rule.id}  {rule.name:<16} {rule.severity:<8} {rule.summary}")
    ctx.exit(0)


@rfc_group.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--list-rules", is_flag=True, expose_value=False, is_eager=True,
              callback=_list_rules, help="Print every rule id with what it checks, and exit.")
@click.option("--format", "output", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True,
              help="text for people, json for tools, github for workflow annotations "
                   "(text adds them too when GITHUB_ACTIONS=true).")
@pass_state
def lint_command(state: CliState, paths: tuple[Path, ...], output: str) -> None:
    """Check RFC files (default: every RFC in the RFC folder). Exit 1 on errors."""
    result = run_lint(state, paths)
    if output == "json":
        click.echo(result.as_json())
    elif output == "github":
        if result.diagnostics:
            click.echo(result.as_github())
        click.echo(result.summary())
    else:
        click.echo(result.as_text())
        if os.environ.get("GITHUB_ACTIONS") == "true" and result.diagnostics:
            click.echo(result.as_github())
    if not result.ok:
        click.get_current_context().exit(1)


def run_lint(state: CliState, paths: tuple[Path, ...] = ()) -> LintResult:
    root = Path(state.root)
    config = state.config.rfc
    corpus = directory_sources(root, config["directory"])
    targets: list[Source] = []
    if not paths:
        targets = corpus
    for path in paths:
        if path.is_dir():
            targets.extend((f, display_path(f, root)) for f in rfc_files(path))
        else:
            targets.append((path, display_path(path, root)))
    return lint_sources(targets, corpus=corpus, types=config["types"])


# -- index ----------------------------------------------------------------------------
@rfc_group.command("index")
@click.option("--check", "check_only", is_flag=True,
              help="Do not write; exit 1 if the index is missing or stale.")
@pass_state
def index_command(state: CliState, check_only: bool) -> None:
    """Render the RFC index (README.md in the RFC folder) from the RFC files."""
    file, shown, text = build_index(state)
    current = file.read_text("utf-8") if file.is_file() else None
    if check_only:
        if current != text:
            state_word = "missing" if current is None else "stale"
            click.echo(f"error: {shown} is {state_word}; run `cvf rfc index` and commit it",
                       err=True)
            if current is not None:
                click.echo(_short_diff(current, text, shown), err=True)
            click.get_current_context().exit(1)
        click.echo(f"{shown} is up to date")
        return
    if current == text:
        click.echo(f"{shown} is up to date")
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text, "utf-8")
    click.echo(f"wrote {shown}")


def _short_diff(current: str, wanted: str, shown: str, limit: int = 30) -> str:
    """The first lines of a unified diff, so a CI log shows what is out of date."""
    lines = list(difflib.unified_diff(current.splitlines(), wanted.splitlines(),
                                      f"{shown} (committed)", f"{shown} (expected)",
                                      lineterm=""))
    more = len(lines) - limit
    return "\n".join(lines[:limit] + ([f"... {more} more diff lines"] if more > 0 else []))


def build_index(state: CliState) -> tuple[Path, str, str]:
    """(index file, its display path, the text it should hold). RFCs must parse."""
    root = Path(state.root)
    config = state.config.rfc
    docs: list[RfcDocument] = []
    for file, shown in directory_sources(root, config["directory"]):
        docs.append(load_rfc(file, display=shown))
    index = root / config["directory"] / "README.md"
    template = root / config["directory"] / TEMPLATE_FILE
    text = render_index(docs, types=config["types"], directory=config["directory"],
                        stats=index_stats(docs, config),
                        template=TEMPLATE_FILE if template.is_file() else None)
    return index, display_path(index, root), text


# -- check ----------------------------------------------------------------------------
@click.command("check")
@click.option("--now", "now_text", default=None, hidden=True,
              help="Pretend the time is this ISO instant (for previews and tests).")
@pass_state
def check_command(state: CliState, now_text: str | None) -> None:
    """Validate the config and every RFC, then print the RFC board. Exit 1 on problems."""
    now = parse_now(now_text)
    config = state.config  # raises ConfigError with every problem, file and line
    problems = type_key_problems(config)
    if problems:
        raise ConfigError(problems[0], problems=problems)
    rfc = config.rfc
    click.echo(f"config: {config.path} is valid"
               f"{'' if (Path(state.root) / config.path).is_file() else ' (not found: defaults)'}")
    result = run_lint(state)
    for diagnostic in result.diagnostics:
        click.echo(diagnostic.text())
    if os.environ.get("GITHUB_ACTIONS") == "true" and result.diagnostics:
        click.echo(result.as_github())
    click.echo(f"rfcs: {result.summary()}")
    click.echo()
    click.echo(board(result.documents, now))
    if result.ok:
        _, shown, text = build_index(state)
        index = Path(state.root) / rfc["directory"] / "README.md"
        if not index.is_file() or index.read_text("utf-8") != text:
            click.echo(f"\nnote: {shown} is out of date; run `cvf rfc index`")
    else:
        click.get_current_context().exit(1)


def type_key_problems(config: Config) -> list[str]:
    """Per-type settings for a type that does not exist: a typo the schema cannot see."""
    rfc = config.rfc
    types = list(rfc["types"])
    file = Path(config.root) / config.path
    located = None
    if file.is_file():
        try:
            located = load_located(file.read_text("utf-8"), source=config.path)
        except (OSError, UnicodeDecodeError, InputError):
            located = None
    problems = []
    for section in ("comment_period", "vote_rules"):
        for key in rfc[section]:
            if key == "default" or key in types:
                continue
            line = located.line_of(("rfc", section, key)) if located else 1
            close = difflib.get_close_matches(str(key), types, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "add it to rfc.types or remove it"
            problems.append(f"{config.path}:{line}: rfc.{section}.{key}: '{key}' is not one of "
                            f"rfc.types ({', '.join(types)}); {hint}")
    return problems


def board(docs: list[RfcDocument], now: datetime) -> str:
    """The RFC board: one row per RFC; open ones show their UTC period end and time left."""
    if not docs:
        return "No RFCs yet. Start one with: cvf rfc new \"Title\" --type standard"
    rows: list[tuple[str, ...]] = [
        ("RFC", "Title", "Type", "Status", "Comment period ends (UTC)", "Left")]
    for doc in sorted(docs, key=lambda d: (d.number or 0, d.path)):
        ends, left = "", ""
        period_end = doc.comment_period_ends
        if doc.status == "open_for_comment" and period_end is not None:
            ends = format_timestamp(period_end).replace("T", " ").replace("Z", " UTC")
            left = time_left(period_end, now)
        title = doc.title if len(doc.title) <= 44 else doc.title[:43] + "…"
        number = f"{doc.number:04d}" if doc.number is not None else "?"
        rows.append((number, title, doc.type or "?", doc.status or "?", ends, left))
    if not any(row[4] for row in rows[1:]):
        rows = [row[:4] for row in rows]  # nothing open for comment: no period columns
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in rows)


def time_left(end: datetime, now: datetime) -> str:
    """``13d 4h left`` while running, ``ended 2d ago`` after: whole days first."""
    seconds = int((end - now).total_seconds())
    days, rest = divmod(abs(seconds), 86400)
    hours = rest // 3600
    span = f"{days}d {hours}h" if days else f"{hours}h {rest % 3600 // 60}m"
    return f"{span} left" if seconds > 0 else f"ended {span} ago"


def register(cli: click.Group) -> None:
    cli.add_command(check_command)
    cli.add_command(rfc_group)


__all__ = ["board", "check_command", "next_number", "parse_now",
           "register", "rfc_group", "run_lint", "time_left"]
