"""The ``cvf`` command line: one group, one sub-module per concern adds its commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from bot import __version__
from bot.config import Config, load_config, schema
from bot.errors import CvfError


class CvfGroup(click.Group):
    """Turns the project's own errors into a clear message and exit code 1, never a traceback."""

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
            self._config = load_config(self.config_path, root=self.root)
        return self._config


pass_state: Callable[..., Any] = click.make_pass_decorator(CliState)


@cli.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of .github/cvf.yml (for editors and check-jsonschema)."""
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
    # Each concern module adds its commands to ``cli`` when imported.
    from bot.commands import register_all

    register_all(cli)


def main(argv: list[str] | None = None) -> None:
    _register_commands()
    cli.main(args=argv, prog_name="cvf", standalone_mode=True)
