"""`cvf route`: what a user sees on the terminal, exit codes, JSON output and records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.commands import register_all
from bot.commands import routing as routing_cmd
from tests.fake_github import FakeGitHub

CONFIG = """
rfc:
  committee: {users: [chair]}
routing:
  agents:
    - {id: executor-1, capabilities: [deploy, execute], region: eu}
    - {id: executor-2, capabilities: [deploy], region: us}
  skills:
    - {id: deploy-prod, risk_level: R2, required_capabilities: [deploy], paths: [deploy/]}
    - {id: docs, risk_level: R0, paths: [docs/]}
  roles:
    approval_manager: {users: [manny]}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text(CONFIG)
    return tmp_path


def run(repo: Path, *args: str):
    register_all(cli)
    return CliRunner().invoke(cli, ["--root", str(repo), "route", *args])


def test_route_a_skill_as_text(repo):
    result = run(repo, "--skill", "deploy-prod")
    assert result.exit_code == 0, result.output
    assert "deploy-prod: R2 -> approval_required" in result.output
    assert "agent:          executor-1" in result.output
    assert "fallbacks:      executor-2" in result.output
    assert "approval role:  approval_manager" in result.output


def test_route_json_with_raised_risk_and_constraints(repo):
    result = run(repo, "--skill", "deploy-prod", "--risk", "R3", "--region", "us",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["decision"] == "human_intervention" and data["risk_level"] == "R3"
    assert data["agent_id"] == "executor-2" and data["approval_role"] == "committee"


def test_no_capable_agent_is_a_result_not_an_error(repo):
    result = run(repo, "--skill", "train", "--capability", "gpu", "--risk", "R0")
    assert result.exit_code == 0
    assert "agent:          none" in result.output
    assert "missing:        gpu" in result.output


def test_unknown_skill_suggests_the_close_one(repo):
    result = run(repo, "--skill", "deploy-prd")
    assert result.exit_code == 1
    assert "error: unknown skill 'deploy-prd' (hint: did you mean 'deploy-prod'?" in result.output


def test_needs_exactly_one_target(repo):
    result = run(repo)
    assert result.exit_code == 1
    assert "give exactly one of --skill ID, --batch FILE or --pr N" in result.output


def test_bad_risk_is_a_clear_error(repo):
    result = run(repo, "--skill", "docs", "--risk", "R9")
    assert result.exit_code == 1
    assert 'expected a risk level R0, R1, R2 or R3, got "R9"' in result.output


def test_output_file_holds_a_decision_record(repo, tmp_path):
    out = tmp_path / "decision.json"
    assert run(repo, "--skill", "deploy-prod", "--output", str(out)).exit_code == 0
    record = json.loads(out.read_text())
    assert record["kind"] == "decision" and record["gate"] == "pending"
    assert record["decision"] == "approval_required" and record["agent"] == "executor-1"
    assert record["approval_role"] and "success" not in record


def test_pr_preview_reads_github_and_writes_nothing(repo, monkeypatch):
    gh = FakeGitHub()
    gh.add_pull(5, files={"deploy/prod.yml": "x", "docs/a.md": "y"})
    gh.add_review(5, "manny")
    monkeypatch.setattr(routing_cmd, "port_for", lambda state, name: gh)
    result = run(repo, "--pr", "5", "--repo", "octo-org/governance", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["risk_level"] == "R2" and data["approvers"] == ["manny"]
    assert data["check"]["conclusion"] == "success"
    assert [s["skill"] for s in data["skills"]] == ["deploy-prod", "docs"]
    assert data["record"]["kind"] == "decision" and data["record"]["gate"] == "passed"
    assert gh.stats.write_log == []

    text = run(repo, "--pr", "5", "--repo", "octo-org/governance")
    assert "Routing: R2 · approval required" in text.output
    assert "cvf:routing" not in text.output


def test_pr_needs_a_repository(repo, monkeypatch):
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    result = run(repo, "--pr", "5")
    assert result.exit_code == 1 and "--repo owner/name" in result.output


def test_health_from_the_metrics_store_reorders_agents(repo):
    from bot.metrics.store import open_store

    store_path = repo / ".cvf" / "metrics.db"
    store_path.parent.mkdir()
    store = open_store(store_path)
    from datetime import UTC, datetime
    now = datetime.now(UTC).isoformat()
    store.add_many([{"timestamp": now, "skill": "deploy-prod", "agent": "executor-1",
                     "risk_level": "R2", "decision": "approval_required", "success": False,
                     "latency_ms": 5} for _ in range(5)])
    store.close()
    result = run(repo, "--skill", "deploy-prod", "--format", "json")
    data = json.loads(result.output)
    assert data["agent_id"] == "executor-2"
    assert "Ranked last for an error rate above 20%: executor-1" in data["reason"]
    assert json.loads(run(repo, "--skill", "deploy-prod", "--no-health", "--format",
                          "json").output)["agent_id"] == "executor-1"


CVF = [sys.executable, "-c", "import sys; from bot.cli import main; main(sys.argv[1:])"]


def test_cli_subprocess_exit_codes(repo):
    ok = subprocess.run([*CVF, "--root", str(repo), "route", "--skill", "docs"],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "docs: R0 -> auto_execute" in ok.stdout
    bad = subprocess.run([*CVF, "--root", str(repo), "route", "--skill", "nope"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: unknown skill 'nope'")
    assert "Traceback" not in bad.stderr


def test_store_flag_appends_the_record_to_the_metrics_store(repo):
    from bot.metrics.store import open_store

    assert run(repo, "--skill", "deploy-prod", "--store").exit_code == 0
    assert run(repo, "--skill", "docs", "--store").exit_code == 0
    store = open_store(repo / ".cvf" / "metrics.db")
    try:
        rows = [r for _, r in store.records_after(0)]
    finally:
        store.close()
    assert [(r["skill"], r["decision"], r["agent"]) for r in rows] == [
        ("deploy-prod", "approval_required", "executor-1"),
        ("docs", "auto_execute", "executor-1")]  # docs needs no capability: any agent


def test_batch_is_routed_urgent_first(repo, tmp_path):
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"skill": "deploy-prod", "priority": "low"},
                                 {"skill": "deploy-prod", "priority": "urgent"},
                                 {"skill": "deploy-prod", "region": "us"}]))
    result = run(repo, "--batch", str(batch), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(d["priority"], d["agent_id"]) for d in data] == [
        ("low", "executor-1"), ("urgent", "executor-1"), ("normal", "executor-2")]
    # Routed urgent, normal, low: urgent takes idle executor-1, the us-only one takes
    # executor-2, and low finds both equally busy (the tie goes to the first id).
    text = run(repo, "--batch", str(batch))
    assert "deploy-prod: R2 -> approval_required (urgent)" in text.output


def test_batch_errors_name_the_item(repo, tmp_path):
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"skill": "docs"}, {"skill": "docs", "prio": "urgent"}]))
    result = run(repo, "--batch", str(batch))
    assert result.exit_code == 1
    assert "batch.json: [1]: unknown key 'prio'" in result.output
    batch.write_text(json.dumps([{"skill": "docs", "risk": "R8"}]))
    assert 'expected a risk level' in run(repo, "--batch", str(batch)).output
