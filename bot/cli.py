"""The ``cvf`` command line: one group, one sub-module per concern adds its commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from bot import __version__
from bot.errors import CvfError

if TYPE_CHECKING:
    from bot.config import Config


class CvfGroup(click.Group):
    """Turns the project's own errors into a clear message and exit code 1, never a traceback.

    Commands are loaded lazily (``bot.commands.COMMANDS``): a command's module is imported
    when it runs, so ``cvf --help`` and ``cvf rfc lint`` start without numpy or PyGithub.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        from bot.commands import COMMANDS

        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from bot.commands import COMMANDS, load

        if cmd_name not in self.commands and cmd_name in COMMANDS:
            load(self, COMMANDS[cmd_name][0])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from the help kept in ``COMMANDS`` for commands
        not loaded yet (the same first paragraph, so the same lines as the loaded ones)."""
        from bot.commands import COMMANDS

        shown = {name: self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
                 for name in self.list_commands(ctx)}
        rows = [(name, command) for name, command in shown.items() if not command.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit))
                                    for name, command in rows])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CvfError as exc:
            for line in getattr(exc, "problems", None) or [str(exc)]:
                click.echo(f"error: {line}", err=True)
            ctx.exit(1)


@click.group(cls=CvfGroup)
@click.version_option(__version__, prog_name="cvf")
@click.option("--config", "config_path", default=None, metavar="PATH",
              help="Config file (default: .github/cvf.yml under --root).")
@click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Repository root.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, root: str) -> None:
    """CVF Governance: RFCs, risk routing, metrics and certification on GitHub."""
    ctx.obj = CliState(root=root, config_path=config_path)


class CliState:
    """What every command needs: where the repo is, and its config (loaded on first use)."""

    def __init__(self, root: str, config_path: str | None):
        self.root = root
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from bot.config import load_config

            self._config = load_config(self.config_path, root=self.root)
        return self._config


pass_state: Callable[..., Any] = click.make_pass_decorator(CliState)


@cli.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of .github/cvf.yml (for editors and check-jsonschema)."""
    from bot.config import schema

    click.echo(json.dumps(schema(), indent=2))


@cli.command("docs")
@click.option("--write", "mode", flag_value="write",
              help="Regenerate the README's config reference.")
@click.option("--check", "mode", flag_value="check", default=True,
              help="Fail when the README's config reference is stale (default).")
@pass_state
def docs_command(state: CliState, mode: str) -> None:
    """Keep the README's config and command references in step with the code."""
    from pathlib import Path

    from bot import clidoc
    from bot.configref import splice

    readme = Path(state.root) / "README.md"
    current = readme.read_text("utf-8")
    root = click.get_current_context().find_root().command
    fresh = splice(current)
    if isinstance(root, click.Group):
        fresh = clidoc.splice(fresh, root)
    if mode == "write":
        readme.write_text(fresh, "utf-8")
        click.echo(f"wrote the config reference into {readme}")
    elif fresh != current:
        raise CvfError("the config reference is stale", where=str(readme),
                       hint="run `cvf docs --write` and commit README.md")
    else:
        click.echo("README.md config reference is current")


def _register_commands() -> None:
    """Load every command at once (the CLI itself loads each one when it is used)."""
    from bot.commands import register_all

    register_all(cli)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="cvf", standalone_mode=True)
