"""The README stays true: its references are generated, its examples use real inputs."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from bot.cli import _register_commands, cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")
_register_commands()


def action() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "action.yml").read_text("utf-8"))


def test_the_first_lines_are_the_two_commands() -> None:
    block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ["pip install -e . && cvf check",
                        "pip install -e '.[test]' && python -m pytest"]


def test_config_and_command_references_are_current() -> None:
    result = CliRunner().invoke(cli, ["--root", str(ROOT), "docs", "--check"])
    assert result.exit_code == 0, (
        f"{result.output}\nthe README is stale: run `cvf docs --write` and commit README.md")


def test_every_action_input_and_output_is_documented() -> None:
    for kind in ("inputs", "outputs"):
        for name in action()[kind]:
            assert re.search(rf"^\| `{re.escape(name)}` \|", README, re.MULTILINE), (
                f"action.yml {kind[:-1]} `{name}` has no row in the README's table")


def test_every_cli_command_and_slash_command_is_in_the_reference() -> None:
    for name in cli.list_commands(None):  # type: ignore[arg-type]
        assert f"##### `cvf {name}`" in README
    for command in ("/rfc open", "/vote approve", "/approve-risk", "/cert request",
                    "/cert submit", "/grade", "/cert help"):
        assert f"`{command}" in README


def example_blocks() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", README, re.DOTALL)
    return [text for text in blocks if "\njobs:" in text]


def example_workflows() -> list[dict[str, Any]]:
    return [yaml.safe_load(text) for text in example_blocks()]


def test_example_workflows_use_real_inputs_and_concurrency() -> None:
    inputs = set(action()["inputs"])
    workflows = example_workflows()
    assert len(workflows) >= 3
    used_commands = set()
    for workflow in workflows:
        assert "concurrency" in workflow, workflow.get("name")
        assert "permissions" in workflow, workflow.get("name")
        for job in workflow["jobs"].values():
            for step in job["steps"]:
                if "cvf-governance/cvf-governance@" in str(step.get("uses", "")):
                    given = set(step.get("with", {}))
                    assert given <= inputs, given - inputs
                    used_commands.add(step["with"]["command"])
    assert {"handle", "tick", "lint", "metrics"} <= used_commands


def test_example_workflows_are_valid_workflows(tmp_path: Path) -> None:
    import shutil
    import subprocess

    tool = shutil.which("check-jsonschema")
    assert tool, "check-jsonschema is in the test extra: pip install -e '.[test]'"
    files = []
    for number, text in enumerate(example_blocks()):
        file = tmp_path / f"example-{number}.yml"
        file.write_text(text)
        files.append(str(file))
    done = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", *files],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_configs_are_valid() -> None:
    from bot.config import SECTIONS, parse_config

    blocks = re.findall(r"```yaml\n(.*?)```", README, re.DOTALL)
    configs = [text for text in blocks
               if (data := yaml.safe_load(text)) and isinstance(data, dict)
               and set(data) <= set(SECTIONS)]
    assert configs
    for text in configs:
        parse_config(text)  # raises ConfigError with the line of any problem


def test_example_workflows_pass_zizmor(tmp_path: Path) -> None:
    """What people copy passes the project's own security audit (CI runs the same)."""
    import shutil
    import subprocess

    tool = shutil.which("zizmor")
    assert tool, "zizmor is in the test extra: pip install -e '.[test]'"
    done = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_workflows.py"),
                           str(ROOT / "README.md"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and int(done.stdout.split()[0]) >= 3, done.stderr
    audit = subprocess.run([tool, "--offline", "--min-severity", "medium", str(tmp_path)],
                           capture_output=True, text=True, timeout=120, check=False)
    assert audit.returncode == 0, audit.stdout + audit.stderr
