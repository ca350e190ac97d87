"""The CLI loads a command's module only when that command runs (issue 15: start-up).

``cvf --help`` lists every command from ``bot.commands.COMMANDS`` without importing the
command modules, so these tests hold that table to what the modules really register and
check, in a fresh process, which libraries a command pulls in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from bot.cli import cli
from bot.commands import COMMANDS, register_all

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "github", "jsonschema", "cryptography", "requests", "flask")


def _loaded_after(args: list[str]) -> tuple[str, set[str]]:
    """Run ``cvf ARGS`` in a fresh interpreter: its output and the modules it imported."""
    script = ("import json, sys\nfrom bot.cli import main\n"
              "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "print('\\n@@' + json.dumps(sorted(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    output, _, modules = run.stdout.rpartition("\n@@")
    return output, set(json.loads(modules))


def _heavy(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules if name.split(".")[0] in HEAVY}


def test_the_command_table_matches_what_the_modules_register() -> None:
    register_all(cli)
    assert set(cli.commands) - {"schema", "docs"} == set(COMMANDS)
    for name, (_modules, help_text) in COMMANDS.items():
        listed = click.Command(name, help=help_text)
        for limit in (30, 45, 70, 1000):
            assert listed.get_short_help_str(limit) == \
                cli.commands[name].get_short_help_str(limit), name


def test_help_lists_every_command_without_loading_any() -> None:
    output, modules = _loaded_after(["--help"])
    for name in [*COMMANDS, "schema", "docs"]:
        assert f"\n  {name} " in output
    assert "Validate the config and every RFC" in output
    assert not {m for m in modules if m.startswith("bot.commands.")}
    assert _heavy(modules) == set()


def test_help_is_the_same_as_with_every_command_loaded() -> None:
    register_all(cli)
    with click.Context(cli, info_name="cvf") as ctx:
        loaded = cli.get_help(ctx)
    output, _ = _loaded_after(["--help"])
    assert output.strip() == loaded.strip()


def test_rfc_lint_loads_neither_numpy_nor_pygithub() -> None:
    output, modules = _loaded_after(["rfc", "lint", "rfcs/"])
    assert "files checked" in output
    assert _heavy(modules) <= {"jsonschema"}  # the config is validated
    assert "bot.commands.cert" not in modules and "bot.commands.metrics" not in modules


@pytest.mark.parametrize(("args", "own", "libraries"), [
    (["metrics", "--help"], {"metrics"}, {"numpy"}),
    (["cert", "--help"], {"cert"}, {"cryptography", "jsonschema"}),
    (["rfc", "tick", "--help"], {"rfc", "rfc_governance"}, {"jsonschema"}),
    (["route", "--help"], {"routing"}, {"jsonschema"}),
])
def test_a_command_loads_only_its_own_module(args: list[str], own: set[str],
                                             libraries: set[str]) -> None:
    output, modules = _loaded_after(args)
    assert "Usage: " in output
    assert {m.removeprefix("bot.commands.") for m in modules
            if m.startswith("bot.commands.")} == own
    assert _heavy(modules) <= libraries
