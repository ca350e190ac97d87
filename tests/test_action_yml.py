"""action.yml holds to what ``cvf action`` reads, and never pastes inputs into shell code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.commands.action import INPUT_VARIABLES, OUTPUTS

ROOT = Path(__file__).resolve().parent.parent
_INPUT = re.compile(r"^\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}$")


def action() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "action.yml").read_text("utf-8"))


def run_step() -> dict[str, Any]:
    (step,) = [s for s in action()["runs"]["steps"] if s.get("id") == "run"]
    return step


def test_the_run_step_passes_exactly_the_inputs_cvf_action_reads() -> None:
    env = run_step()["env"]
    assert run_step()["run"].strip() == "cvf action"
    cvf_vars = {name for name in env if name.startswith("CVF_")}
    assert cvf_vars == set(INPUT_VARIABLES)
    inputs = action()["inputs"]
    mapped = {}
    for name, expression in env.items():
        match = _INPUT.match(str(expression))
        assert match, f"{name} must be exactly ${{{{ inputs.<name> }}}}, got {expression!r}"
        assert match.group(1) in inputs, f"{name} maps to an unknown input {match.group(1)}"
        mapped[match.group(1)] = name
    assert mapped["github-token"] == "GITHUB_TOKEN"
    # Every input reaches the bot, except the one the setup step uses.
    assert set(inputs) - set(mapped) == {"python-version"}
    # Each variable's name is the input's name in upper case.
    for input_name, variable in mapped.items():
        if variable.startswith("CVF_"):
            assert variable == "CVF_" + input_name.upper().replace("-", "_")


def test_cvf_action_reads_no_undeclared_variable() -> None:
    source = (ROOT / "bot" / "commands" / "action.py").read_text("utf-8")
    read = set(re.findall(r'"(CVF_[A-Z_]+)"', source))
    assert read <= set(INPUT_VARIABLES)


def test_outputs_are_the_ones_the_command_writes() -> None:
    outputs = action()["outputs"]
    assert set(outputs) == set(OUTPUTS)
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}"


def test_no_expression_is_pasted_into_shell_code() -> None:
    files = [ROOT / "action.yml", *sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    for file in files:
        data = yaml.safe_load(file.read_text("utf-8"))
        steps = data.get("runs", {}).get("steps", []) if "runs" in data else [
            step for job in data["jobs"].values() for step in job.get("steps", [])]
        for step in steps:
            assert "${{" not in str(step.get("run", "")), f"{file.name}: {step.get('name')}"
            uses = str(step.get("uses", ""))
            if uses and not uses.startswith("./"):
                assert re.search(r"@[0-9a-f]{40}$", uses), f"{file.name}: pin {uses} by sha"


def test_ci_runs_the_readme_test_command_and_the_workflow_checks() -> None:
    script = (ROOT / ".ci" / "run").read_text("utf-8")
    for line in ("pip install -q -e '.[test]'", "python3 -m pytest",
                 "check-jsonschema --builtin-schema vendor.github-actions action.yml",
                 "check-jsonschema --builtin-schema vendor.github-workflows "
                 ".github/workflows/*.yml",
                 "check-jsonschema --builtin-schema vendor.github-issue-forms",
                 "zizmor --offline --min-severity medium ."):
        assert line in script, line
    readme = (ROOT / "README.md").read_text("utf-8")
    assert "pip install -e '.[test]' && python -m pytest" in readme
