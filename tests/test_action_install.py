"""The Action installs in a user's repository, laid out the way a runner lays it out.

A runner checks an action out under ``_actions/<owner>/<repo>/<ref>`` — outside
``GITHUB_WORKSPACE``, which for a workflow without ``actions/checkout`` is empty. Anything
that hashes or reads files through the workspace (``setup-python``'s ``cache:`` with
``cache-dependency-path``, ``hashFiles``) then fails with "No file in … matched". This
test runs every ``run:`` step of action.yml in that layout: a fresh Python with nothing
installed, the action's files copied to a folder of their own, an empty workspace; then
the installed ``cvf`` runs a tick against the GitHub simulator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ghsim import GitHubSimulator
from tests.test_action_e2e import BOT, CONFIG, REPO, TOKEN, parse_outputs, step_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
_STEP_OUTPUT = re.compile(r"^\$\{\{\s*steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)\s*\}\}$")


def steps() -> list[dict[str, Any]]:
    return list(yaml.safe_load((ROOT / "action.yml").read_text("utf-8"))["runs"]["steps"])


def test_no_step_reads_files_through_the_workspace() -> None:
    for step in steps():
        uses = str(step.get("uses", ""))
        given = step.get("with") or {}
        if uses.startswith("actions/setup-python@"):
            # setup-python hashes dependency files only inside GITHUB_WORKSPACE.
            assert "cache" not in given and "cache-dependency-path" not in given, given
        for value in given.values():
            assert "hashFiles" not in str(value) and "github.workspace" not in str(value)
        if uses.startswith("actions/cache@"):
            # The key and path come from a shell step that read the action's own files.
            assert _STEP_OUTPUT.match(str(given["key"])), given
            assert _STEP_OUTPUT.match(str(given["path"])), given


def _copy_action(target: Path) -> None:
    """What a runner downloads: the repository's files at the action's ref."""
    target.mkdir(parents=True)
    for name in ("action.yml", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    for folder in ("bot", "templates"):
        shutil.copytree(ROOT / folder, target / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The wheel carries the App manifest (pyproject's force-include) for `cvf app create`.
    (target / ".github").mkdir()
    shutil.copy(ROOT / ".github" / "app-manifest.json", target / ".github")


def test_the_action_installs_and_runs_outside_the_workspace(tmp_path: Path,
                                                           ghsim: GitHubSimulator) -> None:
    runner = tmp_path / "runner"
    action_path = runner / "_actions" / "cvf-governance" / "cvf-governance" / "v1"
    workspace = runner / "_work" / "governance" / "governance"
    temp = runner / "_temp"
    for folder in (workspace, temp):
        folder.mkdir(parents=True)
    _copy_action(action_path)
    # What setup-python leaves: a Python on PATH with nothing of ours installed.
    python_home = runner / "_tool" / "Python"
    venv.create(python_home, with_pip=True, system_site_packages=False)
    bindir = python_home / ("Scripts" if os.name == "nt" else "bin")

    ghsim.set_token(TOKEN, BOT)
    ghsim.repo(REPO).put_file(".github/cvf.yml", CONFIG)
    outputs: dict[str, dict[str, str]] = {}
    env_base = {
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(runner), "RUNNER_OS": "Linux", "RUNNER_TEMP": str(temp),
        "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_ACTION_PATH": str(action_path),
        "GITHUB_WORKSPACE": str(workspace), "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_NAME": "schedule", "GITHUB_API_URL": ghsim.base_url,
        "PIP_CACHE_DIR": str(runner / "pip-cache")}
    (temp / "event.json").write_text(json.dumps({"schedule": "17 * * * *"}))
    for index, step in enumerate(steps()):
        if "run" not in step:
            continue
        out = temp / f"output-{index}"
        out.write_text("")
        env = {**env_base, "GITHUB_OUTPUT": str(out),
               "GITHUB_STEP_SUMMARY": str(temp / "summary.md"),
               "GITHUB_EVENT_PATH": str(temp / "event.json")}
        if step.get("id") == "run":
            env.update(step_env({"command": "tick"}))
            env["GITHUB_TOKEN"] = TOKEN
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"{step['name']}: {done.stdout}{done.stderr}"
        if step.get("id"):
            text = out.read_text()
            plain = [line for line in text.splitlines() if "<<" not in line and "=" in line]
            outputs[step["id"]] = dict(line.split("=", 1) for line in plain) if plain \
                else parse_outputs(text)

    key = outputs["install-key"]
    assert key["key"].startswith("cvf-governance-pip-Linux-py3.")
    assert Path(key["dir"]).is_relative_to(runner)  # pip's own cache, not the workspace
    assert (bindir / "cvf").is_file()  # installed from the action's folder
    assert outputs["run"]["decision"] == "idle"
