"""One tick runs every periodic job in every deployment, and alerts reach GitHub in each.

The same failing records make the error-budget alert fire; a tick opens its issue, and a
tick seven hours later (the failures out of every window) closes it. Three deployments:

- ``cvf serve``: its ticker's round (``run_ticks`` over every registered tick);
- gunicorn: the scheduler line the README gives, ``cvf tick --repo owner/name``;
- the Action: ``command: tick`` with ``persist: true`` on two fresh runners, the store
  (records and open alert issues) restored from and saved to the data branch.

Real PyGithub over HTTP to the GitHub simulator in each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import parse_config
from bot.events import load_handlers
from bot.github.auth import credentials_from_env
from bot.github.delivery import RepoConfigCache
from bot.github.factory import AdapterFactory
from bot.github.ticker import run_ticks
from bot.metrics.store import open_store
from tests.ghsim import GitHubSimulator
from tests.test_action_e2e import Runner
from tests.test_metrics_alerts import recs

pytestmark = pytest.mark.e2e

REPO = "octo-org/governance"
TOKEN = "ghs_action_e2e_token"
BOT = "github-actions[bot]"
NOW = datetime.now(UTC).replace(microsecond=0)
MARKER = "<!-- cvf:metrics-alert:error-budget:skill:deploy -->"


def failing() -> list[str]:
    return [*recs(NOW - timedelta(hours=6), 360, every=timedelta(minutes=1)),
            *recs(NOW - timedelta(minutes=10), 40, every=timedelta(seconds=15),
                  fail_every=2, prefix="bad-")]


def alert_issue(sim: GitHubSimulator) -> object | None:
    found = [i for i in sim.repo(REPO).issues.values() if (i.body or "").startswith(MARKER)]
    return found[0] if found else None


def _setup(sim: GitHubSimulator, config: str) -> None:
    sim.set_token(TOKEN, BOT)
    sim.repo(REPO).put_file(".github/cvf.yml", config)


def test_cvf_serve_ticker_opens_and_closes_an_alert(ghsim: GitHubSimulator,
                                                   tmp_path: Path) -> None:
    config = f"metrics:\n  store: {tmp_path}/m.db\n"
    _setup(ghsim, config)
    store = open_store(tmp_path / "m.db")
    store.ingest_lines(failing())
    store.close()
    host = parse_config("")
    factory = AdapterFactory(credentials_from_env(host.section("github"),
                                                  {"GITHUB_TOKEN": TOKEN}),
                             api_url=ghsim.base_url, bot_login=BOT, attempts=1, max_wait=1.0,
                             seconds_between_writes=None)
    configs = RepoConfigCache(host)
    assert run_ticks(load_handlers(), factory, [(REPO, None)], configs, NOW) == 0
    issue = alert_issue(ghsim)
    assert issue is not None and issue.state == "open"
    assert ghsim.count("GET", rf"/repos/{REPO}/actions/runs") >= 1  # collection ran too
    assert run_ticks(load_handlers(), factory, [(REPO, None)], configs,
                     NOW + timedelta(hours=7)) == 0
    assert alert_issue(ghsim).state == "closed"


def cvf(sim: GitHubSimulator, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_API_URL": sim.base_url, "GITHUB_TOKEN": TOKEN,
           "CVF_BOT_LOGIN": BOT}
    env.pop("GITHUB_REPOSITORY", None)
    command = [sys.executable, "-c", "import sys; from bot.cli import main; main(sys.argv[1:])",
               "--root", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir,
                          timeout=120, check=False)


def test_gunicorn_scheduler_line_opens_and_closes_an_alert(ghsim: GitHubSimulator,
                                                          tmp_path: Path) -> None:
    config = f"metrics:\n  store: {tmp_path}/m.db\ngithub:\n  bot_login: \"{BOT}\"\n"
    _setup(ghsim, config)
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text(config)  # the host's own config
    store = open_store(tmp_path / "m.db")
    store.ingest_lines(failing())
    store.close()
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    opened = cvf(ghsim, tmp_path, "tick", "--repo", REPO, "--now", stamp)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    assert "1 repository, 0 failed tick(s)" in opened.stdout
    assert alert_issue(ghsim).state == "open"
    later = (NOW + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    closed = cvf(ghsim, tmp_path, "tick", "--repo", REPO, "--now", later)
    assert closed.returncode == 0, closed.stdout + closed.stderr
    assert alert_issue(ghsim).state == "closed"


def test_action_tick_keeps_the_store_on_the_data_branch(ghsim: GitHubSimulator,
                                                       tmp_path: Path) -> None:
    from tests.test_action_e2e import CONFIG

    _setup(ghsim, CONFIG)
    repo = ghsim.repo(REPO)
    day = NOW.date().isoformat()
    # The data branch, set up once as the README says, holding the day's records.
    repo.put_file(f"metrics/{day}.jsonl", "\n".join(failing()) + "\n", ref="cvf-metrics")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = Runner(ghsim, tmp_path / "first")
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    run = first.run("schedule", {"schedule": "*/15 * * * *"}, command="tick", persist="true",
                    now=stamp)
    assert run.code == 0, run.stdout + run.stderr
    assert alert_issue(ghsim).state == "open"
    memory = json.loads(repo.file_text("metrics/alert-issues.json", "cvf-metrics") or "{}")
    assert memory.get("error-budget:skill:deploy") == alert_issue(ghsim).number

    # A fresh runner, seven hours later: the store comes back from the branch, the alert
    # has cleared, and its issue is closed.
    second = Runner(ghsim, tmp_path / "second")
    later = (NOW + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    run = second.run("schedule", {"schedule": "*/15 * * * *"}, command="tick",
                     persist="true", now=later)
    assert run.code == 0, run.stdout + run.stderr
    assert alert_issue(ghsim).state == "closed"
    memory = json.loads(repo.file_text("metrics/alert-issues.json", "cvf-metrics") or "")
    assert "error-budget:skill:deploy" not in memory  # (agent a1 is silent by now: its own)
