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

from bot.metrics.facts import decision_record
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
    # Runs of two pull request heads the routing gate decided on, and one of a push by a
    # person (no agent was chosen for it: not an execution of any agent).
    for sha, ok, hours in (("a" * 40, "success", 2), ("b" * 40, "failure", 1)):
        repo.add_workflow_run("CI", conclusion=ok, head_sha=sha,
                              created_at=now - timedelta(hours=hours),
                              updated_at=now - timedelta(hours=hours, seconds=-60))
    repo.add_workflow_run("CI", conclusion="failure", head_sha="c" * 40, actor="alice",
                          created_at=now - timedelta(minutes=30),
                          updated_at=now - timedelta(minutes=29))
    first, second = tmp_path / "run1", tmp_path / "run2"
    first.mkdir()
    second.mkdir()
    decisions = first / "decisions.jsonl"
    decisions.write_text("".join(json.dumps(decision_record(
        repo=REPO, number=n, head_sha=sha, url=None, skill="deploy", risk_level="R1",
        decision="scope_guard", agent="executor-1", fallbacks=[], approval_role=None,
        approvers=[], gate="passed", timestamp=now - timedelta(hours=3))) + "\n"
        for n, sha in ((1, "a" * 40), (2, "b" * 40))))
    assert cvf(ghsim, first, "ingest", str(decisions)).returncode == 0

    collected = cvf(ghsim, first, "collect")
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout.startswith("collected 3 workflow run(s) and 0 pull request(s): "
                                       "2 record(s) added")
    pushed = cvf(ghsim, first, "sync", "push")
    assert pushed.returncode == 0, pushed.stderr
    # Two files only when the records fall either side of midnight UTC.
    assert re.fullmatch(r"pushed 4 record\(s\) to [12] file\(s\) on cvf-metrics\n",
                        pushed.stdout)
    day_files = [p for p in repo.files["cvf-metrics"] if p.endswith(".jsonl")]
    stored = [json.loads(line) for p in day_files
              for line in (repo.file_text(p, ref="cvf-metrics") or "").splitlines()]
    runs = [r for r in stored if r.get("kind", "execution") == "execution"]
    assert sorted((r["agent"], r["success"]) for r in runs) == [("executor-1", False),
                                                               ("executor-1", True)]
    assert all(r["url"].startswith("https://") for r in runs)

    restored = cvf(ghsim, second, "sync", "pull")
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout == "restored 4 record(s) (0 already stored)\n"
    report = cvf(ghsim, second, "report", "--period", "24h", "--format", "json")
    view = json.loads(report.stdout)
    assert view["summary"]["total_executions"] == 2
    assert view["skills"]["deploy"]["error_rate"] == 50.0
    assert list(view["agent_health"]) == ["executor-1"]
