"""``cvf action`` input checking, in-process: each bad value fails with the input's name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import CliState
from bot.commands.action import execute


def run(tmp_path: Path, **env: str) -> tuple[int, list[str], Path]:
    lines: list[str] = []
    base = {"GITHUB_WORKSPACE": str(tmp_path), "CVF_COMMAND": "lint"}
    code = execute(CliState(root=str(tmp_path), config_path=None), {**base, **env},
                   echo=lines.append)
    return code, lines, tmp_path / ".cvf"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("CVF_DRY_RUN", "maybe", "input `dry-run`: expected true or false, got 'maybe'"),
    ("CVF_PERIOD", "week", "input `period`: expected one of 1h, 24h, 7d, 30d, got 'week'"),
    ("CVF_PR", "twelve", "input `pr`: expected a pull request number, got 'twelve'"),
    ("CVF_RISK", "R9", "input `risk`: expected R0, R1, R2 or R3, got 'R9'"),
    ("CVF_NOW", "tomorrow", "input `now`: expected a UTC time like 2026-12-01T09:00:00Z"),
    ("CVF_PERSIST", "si", "input `persist`: expected true or false, got 'si'"),
])
def test_a_bad_input_names_itself(tmp_path: Path, name: str, value: str, message: str) -> None:
    code, lines, _ = run(tmp_path, **{name: value})
    assert code == 1
    assert any(line.startswith("::error") and message in line for line in lines), lines


def test_an_unknown_command_never_names_a_file(tmp_path: Path) -> None:
    code, lines, folder = run(tmp_path, CVF_COMMAND="../../escape")
    assert code == 1
    assert [p.name for p in folder.iterdir()] == ["report-action.json"]
    report = json.loads((folder / "report-action.json").read_text())
    assert report["setup_error"] is True and report["exit_code"] == 1


def test_outside_actions_nothing_but_the_report_is_written(tmp_path: Path) -> None:
    (tmp_path / "rfcs").mkdir()
    code, lines, folder = run(tmp_path)
    assert code == 0
    assert lines[-1].startswith("cvf lint: RFC lint: 0 files checked: no problems.")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cvf", "rfcs"]
    assert json.loads((folder / "report-lint.json").read_text())["outputs"]["decision"] == "pass"


def test_a_config_path_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    code, lines, _ = run(tmp_path, CVF_CONFIG="/etc/passwd")
    assert code == 1
    assert any("/etc/passwd is outside the workspace" in line for line in lines)
    assert not any("root:" in line for line in lines)  # the file was never read


def test_many_problems_are_all_in_the_summary(tmp_path: Path) -> None:
    (tmp_path / "rfcs").mkdir()
    for n in range(1, 13):
        (tmp_path / "rfcs" / f"{n:04d}-broken.md").write_text("no front matter here\n")
    summary = tmp_path / "summary.md"
    output = tmp_path / "output"
    code, lines, _ = run(tmp_path, GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output))
    assert code == 1
    text = summary.read_text()
    assert all(f"rfcs/{n:04d}-broken.md" in text for n in range(1, 13))
    assert "at most 10 error and 10 warning annotations" in text
    assert "decision<<" in output.read_text() and "\nfail\n" in output.read_text()
