"""The GitHub Action end to end, run as a runner runs it.

Each test executes the ``Run`` step of action.yml (its ``run:`` line, with the ``env:``
mapping filled from the step's inputs) in a subprocess with the environment of an
Actions run: ``GITHUB_EVENT_NAME``/``GITHUB_EVENT_PATH`` with a real webhook payload,
``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``, ``GITHUB_WORKSPACE`` and ``GITHUB_API_URL``
pointing at the local GitHub simulator. The assertions read what a workflow author sees
(outputs, summary, annotations, exit code) and what GitHub received.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import load_payload
from tests.ghsim import GitHubSimulator
from tests.rfc_samples import rfc_text

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
REPO = "octo-org/governance"
TOKEN = "ghs_action_e2e_token"
BOT = "github-actions[bot]"
RFC_PATH = "rfcs/0005-shared-vocabulary.md"
CONFIG = """\
rfc:
  committee:
    users: [alice, bob]
  vote_rules:
    default: {quorum: 2, threshold: 0.5}
routing:
  agents:
    - {id: executor-1, capabilities: [deploy, execute]}
    - {id: doc-bot, capabilities: [write]}
  skills:
    - {id: docs, risk_level: R0, required_capabilities: [write], paths: [docs/, rfcs/]}
    - {id: app-code, risk_level: R1, required_capabilities: [execute], paths: [src/]}
    - {id: deploy-prod, risk_level: R2, required_capabilities: [deploy], paths: [deploy/]}
  roles:
    approval_manager: {users: [rita]}
github:
  retry: {attempts: 1, max_wait: 1s}
"""



def action_step() -> dict[str, Any]:
    action = yaml.safe_load((ROOT / "action.yml").read_text("utf-8"))
    (step,) = [s for s in action["runs"]["steps"] if s.get("id") == "run"]
    return {"action": action, "step": step}


_INPUT = re.compile(r"^\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}$")


def step_env(inputs: dict[str, str]) -> dict[str, str]:
    """The Run step's ``env:`` as the runner evaluates it: each ``${{ inputs.x }}`` becomes
    the ``with:`` value or the input's default."""
    found = action_step()
    declared = found["action"]["inputs"]
    unknown = set(inputs) - set(declared)
    assert not unknown, f"not inputs of action.yml: {unknown}"
    env = {}
    for name, expression in found["step"]["env"].items():
        match = _INPUT.match(str(expression))
        assert match, f"{name}: {expression!r} is not an input"
        key = match.group(1)
        default = declared[key].get("default", "")
        value = inputs.get(key, "" if str(default).startswith("${{") else str(default))
        env[name] = value
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    report: dict[str, Any]

    @property
    def annotations(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("::")]


def parse_outputs(text: str) -> dict[str, str]:
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        name, delimiter = line.split("<<", 1)
        value: list[str] = []
        for inner in lines:
            if inner == delimiter:
                break
            value.append(inner)
        outputs[name] = "\n".join(value)
    return outputs


class Runner:
    """A workspace (the checkout) and a runner temp folder, both under ``tmp_path``."""

    def __init__(self, sim: GitHubSimulator, tmp_path: Path) -> None:
        self.sim = sim
        self.workspace = tmp_path / "work"
        self.temp = tmp_path / "runner-temp"
        self.workspace.mkdir()
        self.temp.mkdir()
        (self.workspace / ".github").mkdir()
        (self.workspace / ".github" / "cvf.yml").write_text(CONFIG)
        (self.workspace / "rfcs").mkdir()
        self.runs = 0

    def run(self, event: str, payload: dict[str, Any], **inputs: str) -> Result:
        self.runs += 1
        folder = self.temp / f"run-{self.runs}"
        folder.mkdir()
        (folder / "event.json").write_text(json.dumps(payload))
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": os.environ.get("HOME", str(folder)),
            "GITHUB_ACTIONS": "true", "CI": "true",
            "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(folder / "event.json"),
            "GITHUB_OUTPUT": str(folder / "output"),
            "GITHUB_STEP_SUMMARY": str(folder / "summary.md"),
            "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_REPOSITORY": REPO,
            "GITHUB_API_URL": self.sim.base_url, "GITHUB_RUN_ID": str(1000 + self.runs),
            "RUNNER_TEMP": str(folder),
            **step_env(inputs), "GITHUB_TOKEN": inputs.get("github-token", TOKEN)}
        (folder / "output").write_text("")
        (folder / "summary.md").write_text("")
        script = action_step()["step"]["run"]
        done = subprocess.run(["bash", "-e", "-c", script], cwd=self.workspace, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert "Traceback" not in done.stderr + done.stdout, done.stderr + done.stdout
        outputs = parse_outputs((folder / "output").read_text())
        report_path = outputs.get("report-path", "")
        report = json.loads(Path(report_path).read_text()) if report_path else {}
        return Result(done.returncode, done.stdout, done.stderr, outputs,
                      (folder / "summary.md").read_text(), report)


@pytest.fixture
def sim(ghsim: GitHubSimulator) -> GitHubSimulator:
    ghsim.set_token(TOKEN, BOT)
    ghsim.repo(REPO).put_file(".github/cvf.yml", CONFIG)
    return ghsim


@pytest.fixture
def runner(sim: GitHubSimulator, tmp_path: Path) -> Runner:
    return Runner(sim, tmp_path)


def pull_payload(number: int, action: str = "opened", *, fork: str | None = None,
                 sender: str = "writer") -> dict[str, Any]:
    payload = load_payload("pull_request", "opened")
    payload["action"] = action
    payload["number"] = payload["pull_request"]["number"] = number
    payload["sender"]["login"] = sender
    payload["repository"]["full_name"] = REPO
    payload["repository"]["default_branch"] = "main"
    payload["pull_request"]["base"]["repo"]["full_name"] = REPO
    payload["pull_request"]["head"]["repo"]["full_name"] = fork or REPO
    payload.pop("installation", None)
    return payload


def comment_payload(sim: GitHubSimulator, number: int, comment_id: int,
                    author: str) -> dict[str, Any]:
    payload = load_payload("issue_comment", "created")
    payload["issue"]["number"] = number
    payload["issue"]["pull_request"] = {"url": f"{sim.base_url}/repos/{REPO}/pulls/{number}"}
    payload["comment"]["id"] = comment_id
    payload["comment"]["user"]["login"] = payload["sender"]["login"] = author
    payload["repository"]["full_name"] = REPO
    payload["repository"]["default_branch"] = "main"
    payload.pop("installation", None)
    return payload


def bot_comments(sim: GitHubSimulator, number: int) -> list[str]:
    return [c.body for c in sim.repo(REPO).comments_on(number) if c.user == BOT]


# -- handle --------------------------------------------------------------------------
def test_handle_on_an_rfc_pull_request(runner: Runner, sim: GitHubSimulator) -> None:
    repo = sim.repo(REPO)
    pull = repo.add_pull(title="RFC: shared vocabulary", author="writer",
                         files={RFC_PATH: rfc_text()}, head_ref="rfc-5")
    result = runner.run("pull_request", pull_payload(pull.number))
    assert result.code == 0, result.stdout + result.stderr
    assert result.outputs["rfc-status"] == "draft"
    assert result.outputs["risk-level"] == "R0"
    assert result.outputs["decision"] == "auto_execute"
    assert "## CVF Governance · `handle`" in result.summary
    assert f"RFC #{pull.number}" in result.summary
    assert result.report["command"] == "handle" and result.report["exit_code"] == 0
    assert repo.labels_on(pull.number) == ["rfc: draft"]
    assert len([b for b in bot_comments(sim, pull.number)
                if b.startswith("<!-- cvf:rfc-status")]) == 1
    assert repo.check_runs_for(pull.pull.head_sha, "cvf/routing")[0].conclusion == "success"

    # A re-run of the same workflow run (or a redelivery) changes nothing twice.
    before = len(bot_comments(sim, pull.number))
    again = runner.run("pull_request", pull_payload(pull.number))
    assert again.code == 0 and again.outputs["rfc-status"] == "draft"
    assert len(bot_comments(sim, pull.number)) == before


def test_handle_on_a_routing_pull_request_blocks_the_merge(runner: Runner,
                                                            sim: GitHubSimulator) -> None:
    repo = sim.repo(REPO)
    pull = repo.add_pull(author="author", files={"src/a.py": "x", "setup.cfg": "y"})
    result = runner.run("pull_request", pull_payload(pull.number, sender="author"))
    assert result.code == 1, result.stdout
    assert result.outputs["risk-level"] == "R1"
    assert result.outputs["decision"] == "scope_guard"
    assert result.outputs["rfc-status"] == ""
    assert any(a.startswith("::error title=cvf/routing::") for a in result.annotations)
    (check,) = repo.check_runs_for(pull.pull.head_sha, "cvf/routing")
    assert check.conclusion == "failure"
    assert "setup.cfg" in result.summary
    assert any("<!-- cvf:routing -->" in b for b in bot_comments(sim, pull.number))
    assert result.report["blocked"] is True


def test_handle_dry_run_writes_nothing(runner: Runner, sim: GitHubSimulator) -> None:
    pull = sim.repo(REPO).add_pull(author="author", files={"docs/a.md": "x"})
    sim.reset_log()
    result = runner.run("pull_request", pull_payload(pull.number), **{"dry-run": "true"})
    assert result.code == 0, result.stdout
    assert sim.writes() == []
    assert "(dry run)" in result.summary
    assert "dry run: nothing was written" in result.stdout
    assert result.outputs["decision"] == "auto_execute"


def test_a_missing_permission_names_the_permissions(runner: Runner,
                                                    sim: GitHubSimulator) -> None:
    pull = sim.repo(REPO).add_pull(author="author", files={"docs/a.md": "x"})
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        sim.fail(403, times=-1, method=method,
                 body={"message": "Resource not accessible by integration"})
    result = runner.run("pull_request", pull_payload(pull.number))
    assert result.code == 1
    (error,) = [a for a in result.annotations if "missing permission" in a]
    for permission in ("pull-requests: write", "checks: write", "contents: write",
                       "issues: write"):
        assert permission in error
    assert "missing permission" in result.summary
    assert TOKEN not in result.stdout + result.stderr + result.summary


def test_a_fork_pull_request_reports_instead_of_failing(runner: Runner,
                                                        sim: GitHubSimulator) -> None:
    pull = sim.repo(REPO).add_pull(author="stranger", files={"src/a.py": "x"},
                                   head_repo="stranger/governance")
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        sim.fail(403, times=-1, method=method,
                 body={"message": "Resource not accessible by integration"})
    result = runner.run("pull_request", pull_payload(pull.number, fork="stranger/governance"))
    assert result.code == 0, result.stdout
    assert any(a.startswith("::warning") and "fork" in a for a in result.annotations)
    assert result.outputs["risk-level"] == "R1" and result.outputs["decision"] == "scope_guard"
    assert "read-only" in result.summary
    assert [w for w in sim.requests if w.is_write and w.status < 400] == []


def test_a_bad_config_is_annotated_on_its_line(runner: Runner) -> None:
    (runner.workspace / ".github" / "cvf.yml").write_text(
        "rfc:\n  directory: rfcs\n  reminder_before: two days\n")
    result = runner.run("pull_request", pull_payload(1))
    assert result.code == 1
    (error,) = [a for a in result.annotations if a.startswith("::error")]
    assert "file=.github/cvf.yml,line=3" in error
    assert "two days" in error
    assert "not set up right" in result.summary

    # The same mistake on the default branch, where `handle` reads the rules from.
    (runner.workspace / ".github" / "cvf.yml").write_text(CONFIG)
    runner.sim.repo(REPO).put_file(".github/cvf.yml",
                                   "rfc:\n  comment_period:\n    default: soon\n")
    remote = runner.run("pull_request", pull_payload(1))
    assert remote.code == 1
    assert any(a.startswith("::error file=.github/cvf.yml,line=3") and "soon" in a
               for a in remote.annotations), remote.stdout

    outside = runner.run("pull_request", pull_payload(1), config="../../etc/passwd")
    assert outside.code == 1 and "outside the workspace" in outside.stdout
    typo = runner.run("pull_request", pull_payload(1), command="lnit")
    assert typo.code == 1 and "'lnit' is not one of" in typo.stdout


# -- lint ----------------------------------------------------------------------------
def test_lint_annotates_a_broken_rfc(runner: Runner, sim: GitHubSimulator) -> None:
    (runner.workspace / "rfcs" / "0001-good.md").write_text(rfc_text(1, title="Good one"))
    broken = rfc_text(2, title="Broken").replace("type: standard", "type: wish")
    (runner.workspace / "rfcs" / "0002-broken.md").write_text(broken)
    sim.reset_log()
    result = runner.run("pull_request", pull_payload(1), command="lint")
    assert result.code == 1
    assert result.outputs["decision"] == "fail"
    errors = [a for a in result.annotations if a.startswith("::error")]
    assert errors and all("file=rfcs/0002-broken.md,line=" in a for a in errors)
    assert any(",line=4," in a for a in errors), errors  # the `type:` line
    assert "0002-broken.md" in result.summary and "wish" in result.summary
    assert result.report["details"]["lint"]["errors"] >= 1
    assert sim.requests == []  # lint reads the checkout only

    (runner.workspace / "rfcs" / "0002-broken.md").write_text(rfc_text(2, title="Fixed"))
    fixed = runner.run("pull_request", pull_payload(1), command="lint",
                       paths="rfcs/0002-broken.md")
    assert fixed.code == 0 and fixed.outputs["decision"] == "pass"


# -- route ---------------------------------------------------------------------------
def test_route_previews_a_pull_request_and_a_skill(runner: Runner,
                                                   sim: GitHubSimulator) -> None:
    pull = sim.repo(REPO).add_pull(author="author", files={"deploy/prod.yml": "x"})
    sim.reset_log()
    result = runner.run("pull_request", pull_payload(pull.number), command="route")
    assert result.code == 1  # R2 without an approval: must not merge yet
    assert result.outputs["risk-level"] == "R2"
    assert result.outputs["decision"] == "approval_required"
    assert any(f"#{pull.number} must not merge yet" in a for a in result.annotations)
    assert sim.writes() == []
    assert sim.count("GET", rf"/pulls/{pull.number}/files") >= 1

    scope = sim.repo(REPO).add_pull(author="author", files={"src/a.py": "x", "setup.cfg": "y"})
    outside = runner.run("workflow_dispatch", {}, command="route", pr=str(scope.number))
    assert outside.code == 1 and outside.outputs["decision"] == "scope_guard"
    assert any(a.startswith("::error file=setup.cfg,title=cvf/routing%3A out of scope::")
               for a in outside.annotations), outside.annotations

    skill = runner.run("workflow_dispatch", {}, command="route", skill="docs")
    assert skill.code == 0
    assert (skill.outputs["decision"], skill.outputs["risk-level"]) == ("auto_execute", "R0")
    assert "doc-bot" in skill.summary


# -- metrics -------------------------------------------------------------------------
def test_metrics_collects_runs_and_reports(runner: Runner, sim: GitHubSimulator) -> None:
    repo = sim.repo(REPO)
    repo.add_workflow_run("CI", conclusion="success")
    repo.add_workflow_run("CI", conclusion="failure")
    result = runner.run("schedule", {"schedule": "17 * * * *"}, command="metrics",
                        period="7d")
    assert result.code == 0, result.stdout
    assert result.outputs["decision"] in ("ok", "alerts")
    assert sim.count("GET", rf"/repos/{REPO}/actions/runs") >= 1
    assert "collected 2 workflow run(s)" in result.summary
    assert result.report["details"]["report"]
    assert (runner.workspace / ".cvf" / "metrics.db").is_file()


# -- tick ----------------------------------------------------------------------------
def test_tick_ends_a_comment_period(runner: Runner, sim: GitHubSimulator) -> None:
    repo = sim.repo(REPO)
    start = datetime.now(UTC) - timedelta(days=20)
    stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    pull = repo.add_pull(title="RFC: shared vocabulary", author="writer",
                         files={RFC_PATH: rfc_text()}, head_ref="rfc-5")
    assert runner.run("pull_request", pull_payload(pull.number), now=stamp).code == 0
    comment = repo.add_comment(pull.number, "writer", "/rfc open",
                               created_at=start + timedelta(minutes=1))
    opened = runner.run("issue_comment", comment_payload(sim, pull.number, comment.id,
                                                         "writer"), now=stamp)
    assert opened.outputs["rfc-status"] == "open_for_comment", opened.stdout
    preview = runner.run("schedule", {"schedule": "17 * * * *"}, command="tick",
                         **{"dry-run": "true"})
    assert preview.outputs["decision"] == "changed"
    assert f"POST /repos/{REPO}/issues/{pull.number}/labels" in preview.stdout
    assert repo.labels_on(pull.number) == ["rfc: open-for-comment"]

    result = runner.run("schedule", {"schedule": "17 * * * *"}, command="tick")
    assert result.code == 0, result.stdout
    assert result.outputs["decision"] == "changed"
    assert f"#{pull.number}: open_for_comment → review" in result.summary
    assert repo.labels_on(pull.number) == ["rfc: review"]
    idle = runner.run("schedule", {"schedule": "17 * * * *"}, command="tick")
    assert idle.outputs["decision"] == "idle"

    # `handle` on a schedule has nothing to react to, and says which command to use.
    wrong = runner.run("schedule", {"schedule": "17 * * * *"})
    assert wrong.code == 0
    assert any(a.startswith("::notice") and "command: tick" in a for a in wrong.annotations)


# -- certify -------------------------------------------------------------------------
def test_certify_verifies_the_registry(runner: Runner, tmp_path: Path,
                                       sim: GitHubSimulator) -> None:
    from bot.cli import _register_commands, cli

    _register_commands()
    work = runner.workspace
    shutil.copytree(ROOT / "certification", work / "certification", dirs_exist_ok=True)
    keys = tmp_path / "keys"
    invoke = CliRunner().invoke
    assert invoke(cli, ["--root", str(work), "cert", "keygen", "--out", str(keys)]).exit_code == 0
    shutil.copy(keys / "public-key.pem", work / "certification/issuer/public-key.pem")
    cert = work / "certification/certificates/alice-foundation.json"
    issued = invoke(cli, ["--root", str(work), "cert", "issue", "--login", "alice", "--level",
                          "foundation", "--score", "82", "--evidence",
                          "https://github.com/octo-org/governance/pull/10", "--key",
                          str(keys / "private-key.pem"), "--out", str(cert), "--register"],
                    env={"GITHUB_REPOSITORY": REPO})
    assert issued.exit_code == 0, issued.output
    registry = json.loads((work / "certification/registry.json").read_text())
    listed = len(registry["certificates"])

    result = runner.run("pull_request", pull_payload(1), command="certify")
    assert result.code == 0, result.stdout
    assert result.outputs["decision"] == "valid"
    assert f"{listed} certificate(s) checked: 0 invalid" in result.summary
    assert sim.requests == []

    doc = json.loads(cert.read_text())
    doc["credentialSubject"]["result"][0]["value"] = "97"
    cert.write_text(json.dumps(doc, indent=2))
    tampered = runner.run("pull_request", pull_payload(1), command="certify",
                          certificate="certification/certificates/alice-foundation.json")
    assert tampered.code == 1
    assert tampered.outputs["decision"] == "invalid"
    assert any(a.startswith("::error file=certification/certificates/alice-foundation.json")
               and "signature" in a for a in tampered.annotations)


def test_the_rules_come_from_the_default_branch(runner: Runner, sim: GitHubSimulator) -> None:
    # The checkout of a pull_request run is the pull request's code: its copy of the config
    # (here widened so setup.cfg is in scope) must not judge it.
    (runner.workspace / ".github" / "cvf.yml").write_text(
        CONFIG.replace("paths: [src/]", "paths: [src/, setup.cfg]"))
    pull = sim.repo(REPO).add_pull(author="author", files={"src/a.py": "x", "setup.cfg": "y"})
    result = runner.run("pull_request", pull_payload(pull.number, sender="author"))
    assert result.code == 1 and result.outputs["decision"] == "scope_guard"
    assert result.report["details"]["config"] == ".github/cvf.yml on main"

    # No checkout at all: the rules are still the repository's.
    shutil.rmtree(runner.workspace / ".github")
    again = runner.run("pull_request", pull_payload(pull.number, sender="author"))
    assert again.code == 1 and again.outputs["risk-level"] == "R1"


def test_an_app_token_writes_as_the_app(runner: Runner, sim: GitHubSimulator) -> None:
    sim.set_token("ghs_app_installation_token", "cvf-app[bot]")
    pull = sim.repo(REPO).add_pull(author="author", files={"docs/a.md": "x"})
    for _ in range(2):
        result = runner.run("pull_request", pull_payload(pull.number),
                            **{"github-token": "ghs_app_installation_token",
                               "bot-login": "cvf-app[bot]"})
        assert result.code == 0, result.stdout
    reports = [c for c in sim.repo(REPO).comments_on(pull.number)
               if "<!-- cvf:routing -->" in c.body]
    assert [c.user for c in reports] == ["cvf-app[bot]"]  # found and edited, not re-posted


def test_an_approving_review_opens_the_r2_gate(runner: Runner, sim: GitHubSimulator) -> None:
    repo = sim.repo(REPO)
    pull = repo.add_pull(author="author", files={"deploy/prod.yml": "x"})
    waiting = runner.run("pull_request", pull_payload(pull.number, sender="author"))
    assert waiting.code == 0  # waiting for a review is not a failure: the check is pending
    assert waiting.outputs["decision"] == "approval_required"
    (check,) = repo.check_runs_for(pull.pull.head_sha, "cvf/routing")
    assert (check.status, check.conclusion) == ("in_progress", None)

    repo.add_review(pull.number, "rita", "APPROVED", commit_id=pull.pull.head_sha)
    review = load_payload("pull_request_review", "submitted")
    review["pull_request"]["number"] = pull.number
    review["repository"]["full_name"] = REPO
    review["repository"]["default_branch"] = "main"
    review["pull_request"]["base"]["repo"]["full_name"] = REPO
    review["pull_request"]["head"]["repo"]["full_name"] = REPO
    review["sender"]["login"] = review["review"]["user"]["login"] = "rita"
    review.pop("installation", None)
    approved = runner.run("pull_request_review", review)
    assert approved.code == 0, approved.stdout
    (check,) = repo.check_runs_for(pull.pull.head_sha, "cvf/routing")
    assert check.conclusion == "success"
    assert "approved by rita" in check.output.get("title", "")
