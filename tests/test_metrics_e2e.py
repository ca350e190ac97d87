"""`cvf metrics collect` and `sync` as an Action runs them: the real CLI, real PyGithub,
over HTTP to the GitHub simulator. Two "runs" with separate stores share one data branch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ghsim.server import GitHubSimulator

pytestmark = pytest.mark.e2e
REPO = "octo-org/governance"


def cvf(sim: GitHubSimulator, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_API_URL": sim.base_url, "GITHUB_TOKEN": "action-token",
           "GITHUB_REPOSITORY": REPO}
    command = [sys.executable, "-c", "import sys; from bot.cli import main; main(sys.argv[1:])",
               "--root", str(workdir), "metrics", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir,
                          timeout=120, check=False)


def test_collect_then_keep_the_store_on_a_data_branch(ghsim: GitHubSimulator,
                                                      tmp_path: Path) -> None:
    ghsim.set_token("action-token", "github-actions[bot]")
    repo = ghsim.repo(REPO)
    repo.put_file("metrics/.keep", "", ref="cvf-metrics")  # the branch, made once
    now = datetime.now(UTC)
    repo.add_workflow_run("CI", conclusion="success", created_at=now - timedelta(hours=2),
                          updated_at=now - timedelta(hours=2) + timedelta(seconds=75))
    repo.add_workflow_run("CI", conclusion="failure", created_at=now - timedelta(hours=1),
                          updated_at=now - timedelta(hours=1) + timedelta(seconds=30))
    first, second = tmp_path / "run1", tmp_path / "run2"
    first.mkdir()
    second.mkdir()

    collected = cvf(ghsim, first, "collect")
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout.startswith("collected 2 workflow run(s) and 0 pull request(s): "
                                       "2 record(s) added")
    pushed = cvf(ghsim, first, "sync", "push")
    assert pushed.returncode == 0, pushed.stderr
    # Two files only when the two runs fall either side of midnight UTC.
    assert re.fullmatch(r"pushed 2 record\(s\) to [12] file\(s\) on cvf-metrics\n",
                        pushed.stdout)
    day_files = [p for p in repo.files["cvf-metrics"] if p.endswith(".jsonl")]
    stored = [json.loads(line) for p in day_files
              for line in (repo.file_text(p, ref="cvf-metrics") or "").splitlines()]
    assert sorted(r["success"] for r in stored) == [False, True]

    restored = cvf(ghsim, second, "sync", "pull")
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout == "restored 2 record(s) (0 already stored)\n"
    report = cvf(ghsim, second, "report", "--period", "24h", "--format", "json")
    view = json.loads(report.stdout)
    assert view["summary"]["total_executions"] == 2
    assert view["skills"]["workflow:CI"]["error_rate"] == 50.0
