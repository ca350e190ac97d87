"""``cvf check``: config + every RFC validated, then the RFC board; in-process and as a
real subprocess, the way the README tells users to run it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.commands import register_all
from bot.commands.rfc import time_left
from tests.test_rfc_lint import rfc

register_all(cli)
REPO = Path(__file__).resolve().parents[1]
OPEN = {"status": "open_for_comment", "comment_period_ends": "2026-12-09T17:00:00Z",
        "discussion": "https://github.com/acme/gov/pull/7"}


def run(root: Path, *args: str, actions: bool = False) -> Any:
    return CliRunner().invoke(cli, ["--root", str(root), "check", *args],
                              env={"GITHUB_ACTIONS": "true" if actions else ""})


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text("rfc:\n  comment_period: {default: 14d}\n")
    rfcs = tmp_path / "rfcs"
    rfcs.mkdir()
    (rfcs / "0001-add-routing.md").write_text(rfc())
    (rfcs / "0002-dashboard.md").write_text(rfc(rfc="2", title="Dashboard", **OPEN))
    return tmp_path


def test_board_shows_open_rfcs_with_utc_end_and_time_left(repo: Path):
    result = run(repo, "--now", "2026-11-25T12:30:00Z")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "config: .github/cvf.yml is valid"
    assert lines[1] == "rfcs: 2 files checked: no problems"
    header = lines[3]
    assert header.split() == ["RFC", "Title", "Type", "Status", "Comment", "period", "ends",
                              "(UTC)", "Left"]
    assert lines[4].split() == ["0001", "Add", "Routing", "standard", "draft"]
    assert lines[5].split() == ["0002", "Dashboard", "standard", "open_for_comment",
                                "2026-12-09", "17:00:00", "UTC", "14d", "4h", "left"]
    assert "note: rfcs/README.md is out of date; run `cvf rfc index`" in result.output


def test_board_after_the_period_says_it_ended(repo: Path):
    result = run(repo, "--now", "2026-12-11T18:00:00+00:00")
    assert "ended 2d 1h ago" in result.output


def test_board_without_open_rfcs_has_no_period_columns(tmp_path: Path):
    (tmp_path / "rfcs").mkdir()
    (tmp_path / "rfcs" / "0001-add-routing.md").write_text(rfc())
    result = run(tmp_path)
    assert result.exit_code == 0
    assert "config: .github/cvf.yml is valid (not found: defaults)" in result.output
    assert "Comment period" not in result.output


def test_no_rfcs_yet(tmp_path: Path):
    result = run(tmp_path)
    assert result.exit_code == 0
    assert 'No RFCs yet. Start one with: cvf rfc new "Title" --type standard' in result.output


def test_rfc_problems_fail_but_the_board_is_still_shown(repo: Path):
    (repo / "rfcs" / "0003-bad.md").write_text(rfc(rfc="3", title="Bad", type="nope"))
    (repo / "rfcs" / "0004-empty.md").write_text("")
    result = run(repo, "--now", "2026-11-25T12:30:00Z")
    assert result.exit_code == 1
    assert "rfcs/0003-bad.md:4:1: RFC-005 type 'nope' is not one of" in result.output
    assert "rfcs/0004-empty.md:1:1: RFC-000 file is empty" in result.output
    assert "rfcs: 4 files checked: 2 errors, 0 warnings" in result.output
    assert "0002  Dashboard" in result.output
    assert "out of date" not in result.output


def test_in_github_actions_problems_are_also_annotations(repo: Path):
    (repo / "rfcs" / "0003-bad.md").write_text(rfc(rfc="3", title="Bad", type="nope"))
    result = run(repo, actions=True)
    assert result.exit_code == 1
    assert "::error file=rfcs/0003-bad.md,line=4,col=1,title=RFC-005 type::" in result.output
    assert "::error" not in run(repo).output


def test_bad_config_fails_with_file_line_and_key(repo: Path):
    (repo / ".github" / "cvf.yml").write_text("rfc:\n  comment_period:\n    standard: two weeks\n")
    result = run(repo)
    assert result.exit_code == 1
    assert ('error: .github/cvf.yml:3: rfc.comment_period.standard: expected a duration like '
            '"14d", got "two weeks"') in result.output


def test_settings_for_an_unknown_type_are_an_error(repo: Path):
    (repo / ".github" / "cvf.yml").write_text(
        "rfc:\n  comment_period:\n    default: 14d\n    standrd: 7d\n"
        "  vote_rules:\n    policy_change: {quorum: 3}\n    experiment: {quorum: 1}\n")
    result = run(repo)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: .github/cvf.yml:4: rfc.comment_period.standrd: 'standrd' is not one of "
        "rfc.types (capability_proposal, policy_change, roadmap, standard, breaking_change); "
        "did you mean 'standard'?",
        "error: .github/cvf.yml:7: rfc.vote_rules.experiment: 'experiment' is not one of "
        "rfc.types (capability_proposal, policy_change, roadmap, standard, breaking_change); "
        "add it to rfc.types or remove it",
    ]


def test_bad_now_is_a_usage_error(repo: Path):
    result = run(repo, "--now", "next tuesday")
    assert result.exit_code == 2
    assert "expected an ISO time" in result.output


@pytest.mark.parametrize(("end", "now", "text"), [
    ("2026-12-09T17:00:00", "2026-11-25T12:30:00", "14d 4h left"),
    ("2026-12-09T17:00:00", "2026-12-09T15:20:00", "1h 40m left"),
    ("2026-12-09T17:00:00", "2026-12-09T17:00:00", "ended 0h 0m ago"),
    ("2026-12-09T17:00:00", "2026-12-12T17:00:00", "ended 3d 0h ago"),
])
def test_time_left(end: str, now: str, text: str):
    def utc(value: str) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    assert time_left(utc(end), utc(now)) == text


def cvf_command() -> list[str]:
    """The installed ``cvf`` console script, as the README runs it."""
    script = Path(sys.executable).parent / "cvf"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from bot.cli import main; main(sys.argv[1:])"]


def test_real_subprocess_on_this_repository():
    done = subprocess.run([*cvf_command(), "check"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("config: .github/cvf.yml is valid\nrfcs: 4 files checked: "
                                  "no problems\n")
    for row in ("0001  Add Multi-Agent Routing", "0002  Implement Monitoring Dashboard",
                "0003  Launch Certification Program", "0004  Ecosystem Guidelines"):
        assert row in done.stdout
    assert "out of date" not in done.stdout


def test_real_subprocess_bad_input_exits_1_without_traceback(tmp_path: Path):
    (tmp_path / "rfcs").mkdir()
    (tmp_path / "rfcs" / "0001-list.md").write_text("---\n- a\n- b\n---\n")
    done = subprocess.run([*cvf_command(), "--root", str(tmp_path), "check"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert ("rfcs/0001-list.md:2:1: RFC-001 front matter must be a mapping of fields, "
            "got a list") in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
