"""``cvf handle``: the Action host, its inputs, and a dry run that writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner

from bot.cli import CliState, cli
from bot.commands import register_all
from bot.commands.github import handle_event
from bot.config import parse_config
from bot.events import Event, Router
from bot.github.auth import TokenCredentials
from bot.github.factory import AdapterFactory
from bot.github.port import GitHubPort
from tests.conftest import load_payload

register_all(cli)
API = "https://api.github.com:443"


def write_payload(tmp_path: Path, event: str, name: str, **changes: Any) -> Path:
    payload = load_payload(event, name)
    payload.update(changes)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return path


def state_for(tmp_path: Path) -> CliState:
    state = CliState(root=str(tmp_path), config_path=None)
    state._config = parse_config("")
    return state


def labelling_router() -> Router:
    router = Router()

    @router.register("issues", "opened")
    def label(event: Event, github: GitHubPort) -> None:
        number = event.payload["issue"]["number"]
        github.upsert_sticky_comment(number, "<!-- cvf:hello -->", "Thanks for the issue!")
        github.add_labels(number, ["triage"])
        event.outputs["decision"] = "triaged"
        event.summary.append("## Triaged")

    return router


@responses.activate
def test_dry_run_prints_every_write_and_sends_none(tmp_path: Path) -> None:
    path = write_payload(tmp_path, "issues", "opened")
    responses.get(f"{API}/repos/Codertocat/Hello-World/issues/1/comments", json=[])
    factory = AdapterFactory(TokenCredentials("ghp_dry_token"), api_url="https://api.github.com",
                             bot_login="cvf-governance[bot]")
    printed: list[str] = []
    env = {"GITHUB_WORKSPACE": str(tmp_path), "GITHUB_OUTPUT": str(tmp_path / "out"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    code = handle_event(state_for(tmp_path), event_name="issues", payload_path=str(path),
                        dry_run=True, env=env, router=labelling_router(), factory=factory,
                        echo=printed.append)
    assert code == 0
    assert {c.request.method for c in responses.calls} == {"GET"}
    text = "\n".join(printed)
    assert "POST /repos/Codertocat/Hello-World/issues/1/comments" in text
    assert "Thanks for the issue!" in text
    assert "POST /repos/Codertocat/Hello-World/issues/1/labels" in text and '"triage"' in text
    assert "dry run: nothing was written" in text
    assert "ghp_dry_token" not in text
    assert "decision<<" in (tmp_path / "out").read_text()
    assert "## Triaged" in (tmp_path / "summary.md").read_text()


def test_reads_the_runner_environment(tmp_path: Path) -> None:
    from tests.fake_github import FakeGitHub

    path = write_payload(tmp_path, "issues", "opened")
    fake = FakeGitHub("Codertocat/Hello-World")
    fake.add_issue(1)
    env = {"GITHUB_EVENT_NAME": "issues", "GITHUB_EVENT_PATH": str(path),
           "GITHUB_WORKSPACE": str(tmp_path / "elsewhere")}
    printed: list[str] = []
    code = handle_event(state_for(tmp_path), event_name=None, payload_path=None, dry_run=False,
                        env=env, router=labelling_router(),
                        factory=lambda repo, inst=None, dry_run=False: fake,
                        echo=printed.append)
    assert code == 0 and fake.labels_on(1) == ["triage"]
    assert printed[0].startswith("handled issues.opened for Codertocat/Hello-World")


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["--root", str(tmp_path), "handle", *args],
                              env={"GITHUB_WORKSPACE": str(tmp_path), "GITHUB_EVENT_NAME": "",
                                   "GITHUB_EVENT_PATH": "", **(env or {})})


def test_payload_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "repo"
    inside.mkdir()
    outside = write_payload(tmp_path, "issues", "opened")
    result = run(inside, "--event", "issues", "--payload", str(outside),
                 env={"GITHUB_WORKSPACE": str(inside)})
    assert result.exit_code == 1
    assert "outside the workspace" in result.output and "Traceback" not in result.output
    result = run(inside, "--event", "issues", "--payload", "../event.json",
                 env={"GITHUB_WORKSPACE": str(inside)})
    assert result.exit_code == 1 and "outside the workspace" in result.output


@pytest.mark.parametrize("content", ["not json", "[]"])
def test_bad_payload_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "e.json").write_text(content)
    result = run(tmp_path, "--event", "issues", "--payload", "e.json")
    assert result.exit_code == 1 and result.output.startswith("error: ")


def test_no_event_at_all_says_what_to_pass(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.exit_code == 1
    assert "--event NAME --payload FILE" in result.output


def test_event_without_handler_exits_0(tmp_path: Path) -> None:
    path = write_payload(tmp_path, "ping", "payload")
    result = run(tmp_path, "--event", "ping", "--payload", str(path))
    assert result.exit_code == 0 and "no handler for ping" in result.output


def test_the_sample_event_shows_what_the_bot_would_do_and_writes_nothing(ghsim, tmp_path,
                                                                          monkeypatch):
    """The README's first try: `cvf handle --sample --repo … --pr … --dry-run`."""
    repo = ghsim.repo("octo-org/app")
    ghsim.set_token("ghp_sample", "octocat")
    repo.put_file(".github/cvf.yml", "routing:\n  skills:\n    - {id: docs, risk_level: R0, "
                  "required_capabilities: [write], paths: ['docs/**']}\n  agents:\n"
                  "    - {id: doc-bot, capabilities: [write]}\n")
    pull = repo.add_pull(title="Docs", author="writer", files={"docs/a.md": "hello"})
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_sample")
    monkeypatch.setenv("GITHUB_API_URL", ghsim.base_url)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["handle", "--sample", "--repo", "octo-org/app",
                                      "--pr", str(pull.number), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "handled pull_request.opened for octo-org/app" in result.output
    assert "(dry run: nothing was written)" in result.output
    assert "cvf/routing" in result.output  # the check run it would set, listed
    assert repo.comments_on(pull.number) == []
    refused = CliRunner().invoke(cli, ["handle", "--sample", "--repo", "octo-org/app",
                                       "--pr", "1"])
    assert refused.exit_code != 0 and "needs --repo OWNER/NAME, --pr N and --dry-run" in \
        refused.output
