"""`cvf metrics` as a user runs it: files in, reports out, errors as `error: ...` + exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from bot.cli import CliState
from bot.commands.metrics import run_collect, run_sync
from tests.fake_github import FakeGitHub
from tests.test_metrics_aggregate import FIXED, NOW

WHEN = "2026-03-10T12:00:30Z"


def cvf(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "import sys; from bot.cli import main; main(sys.argv[1:])",
               "--root", str(tmp_path), "metrics", *args]
    return subprocess.run(command, capture_output=True, text=True, input=stdin, cwd=tmp_path,
                          timeout=60, check=False)


def test_ingest_report_export_round_trip(tmp_path: Path) -> None:
    (tmp_path / "runs.jsonl").write_text("\n".join(FIXED) + "\n")
    done = cvf(tmp_path, "ingest", "runs.jsonl")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "runs.jsonl: 6 record(s) added, 0 already stored\n"
    assert (tmp_path / ".cvf" / "metrics.db").is_file()  # the default store, made on first use
    report = cvf(tmp_path, "report", "--period", "1h", "--now", WHEN, "--no-alerts")
    assert report.returncode == 0, report.stderr
    assert "| 5 | 80.0% | 20.0% | 300 ms |" in report.stdout
    assert "```mermaid\nxychart-beta" in report.stdout
    as_json = json.loads(cvf(tmp_path, "report", "--period", "7d", "--format", "json",
                             "--now", WHEN).stdout)
    assert as_json["summary"]["total_executions"] == 6
    assert [a["key"] for a in as_json["alerts"]] == ["silent:a3"]
    html = tmp_path / "out" / "dash.html"
    html.parent.mkdir()
    page = cvf(tmp_path, "report", "--format", "html", "--role", "operator", "-o", str(html),
               "--now", WHEN)
    assert page.returncode == 0 and "report written to" in page.stderr
    text = html.read_text()
    assert 'id="operator"' in text and 'id="compliance"' not in text
    exported = cvf(tmp_path, "export", "--since", "2026-03-10", "--now", WHEN).stdout
    assert [json.loads(line)["id"] for line in exported.splitlines()] == ["1", "2", "3", "4",
                                                                          "5"]


def test_a_bad_file_is_refused_with_line_numbers_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(FIXED[0] + "\n" + '{"timestamp": "noon"}\n')
    done = cvf(tmp_path, "ingest", "bad.jsonl")
    assert done.returncode == 1
    assert done.stderr.splitlines()[0].startswith(
        "error: bad.jsonl:2: `timestamp` must be ISO 8601 with a zone")
    assert "Traceback" not in done.stderr
    missing = cvf(tmp_path, "ingest", "nope.jsonl")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: nope.jsonl: file not found")
    bad_since = cvf(tmp_path, "report", "--since", "last tuesday")
    assert bad_since.returncode == 1 and "error: --since: expected a time" in bad_since.stderr


def test_alerts_exit_2_when_firing_and_stdin_ingest(tmp_path: Path) -> None:
    done = cvf(tmp_path, "ingest", "-", stdin="\n".join(FIXED))
    assert done.stdout == "-: 6 record(s) added, 0 already stored\n"
    alerts = cvf(tmp_path, "alerts", "--now", WHEN)
    assert alerts.returncode == 2
    assert alerts.stdout.startswith("warning: silent:a3: agent a3 has reported no execution")
    quiet = cvf(tmp_path, "alerts", "--now", "2026-03-08T12:30:00Z")
    assert quiet.returncode == 0 and quiet.stdout == "no alerts firing\n"


def test_collect_and_sync_through_the_command_functions(tmp_path: Path) -> None:
    from bot.metrics.facts import decision_record
    from bot.metrics.store import open_store

    gh = FakeGitHub(now=NOW - timedelta(hours=2))
    gh.add_workflow_run("CI", created_at=NOW - timedelta(hours=1),
                        updated_at=NOW - timedelta(minutes=59), head_sha="abc123")
    gh.add_workflow_run("CI", created_at=NOW - timedelta(hours=1),
                        updated_at=NOW - timedelta(minutes=59), head_sha="unrouted")
    store = open_store(tmp_path / ".cvf" / "metrics.db")
    store.add_many([decision_record(
        repo="octo-org/governance", number=4, head_sha="abc123", url=None, skill="deploy",
        risk_level="R1", decision="scope_guard", agent="executor-1", fallbacks=[],
        approval_role=None, approvers=[], gate="passed", timestamp=NOW - timedelta(hours=1))])
    store.close()
    state = CliState(root=str(tmp_path), config_path=None)
    said: list[str] = []
    run_collect(state, since=None, pulls=(), repo="octo-org/governance", store_path=None,
                now=NOW, env={}, factory=lambda *a, **k: gh, echo=said.append)
    # Only the run of the routed head is an execution (of the agent chosen for it).
    assert said[-1].startswith("collected 2 workflow run(s) and 0 pull request(s): 1 record(s)")
    run_sync(state, "push", repo="octo-org/governance", dry_run=False, store_path=None,
             now=NOW, env={}, factory=lambda *a, **k: gh, echo=said.append)
    assert said[-1] == "pushed 2 record(s) to 1 file(s) on cvf-metrics"
    other = CliState(root=str(tmp_path / "elsewhere"), config_path=None)
    run_sync(other, "pull", repo="octo-org/governance", dry_run=False, store_path=None,
             now=NOW, env={}, factory=lambda *a, **k: gh, echo=said.append)
    assert said[-1] == "restored 2 record(s) (0 already stored)"


def test_alerts_publish_dry_run_lists_the_writes_and_makes_none(tmp_path: Path,
                                                                ghsim) -> None:
    import os

    repo = ghsim.repo("octo-org/app")
    ghsim.set_token("ghp_alerts", "cvf-bot")
    cvf(tmp_path, "ingest", "-", stdin="\n".join(FIXED))
    env = {**os.environ, "GITHUB_TOKEN": "ghp_alerts", "GITHUB_API_URL": ghsim.base_url}
    command = [sys.executable, "-c", "import sys; from bot.cli import main; main(sys.argv[1:])",
               "--root", str(tmp_path), "metrics", "alerts", "--now", WHEN, "--publish",
               "--repo", "octo-org/app", "--dry-run"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=60, check=False)
    assert done.returncode == 2, done.stderr  # an alert fires
    assert "(dry run: nothing was written)" in done.stderr
    assert "POST /repos/octo-org/app/issues" in done.stdout  # the issue it would open
    assert "Metrics alert" in done.stdout
    assert repo.issues == {}  # nothing was opened
