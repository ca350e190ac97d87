"""``cvf app create``: GitHub's App manifest flow end to end over real HTTP.

The command serves its page on 127.0.0.1; the test reads the form a browser would post to
github.com, then plays GitHub's redirect back with a code the simulator knows, and checks
what the user gets: the credential files (secrets 0600) and the printed ``export`` lines.
"""

from __future__ import annotations

import json
import re
import stat
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from bot.cli import cli
from tests.ghsim import GitHubSimulator


class FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.method = ""
        self.manifest = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.action, self.method = found["action"] or "", found["method"] or ""
        if tag == "input" and found.get("name") == "manifest":
            self.manifest = found["value"] or ""


def start(args: list[str]) -> tuple[threading.Thread, dict[str, Any], str]:
    """Run ``cvf app create ARGS`` in a thread; returns it, its result and the page URL."""
    outcome: dict[str, Any] = {}
    printed = threading.Event()
    lines: list[str] = []

    runner = CliRunner()

    def run() -> None:
        outcome["result"] = runner.invoke(cli, ["app", "create", *args])

    import bot.commands.app as app_module

    real_serve = app_module.serve

    def serve(flow: Any, **kw: Any) -> None:
        def echo(text: str) -> None:
            lines.append(text)
            printed.set()
        real_serve(flow, echo=echo, **kw)

    app_module.serve = serve  # type: ignore[assignment]
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert printed.wait(20), outcome.get("result") and outcome["result"].output
    finally:
        app_module.serve = real_serve  # type: ignore[assignment]
    url = re.search(r"Open (http://127\.0\.0\.1:\d+/) ", lines[0])
    assert url, lines
    return thread, outcome, url.group(1)


def test_manifest_flow_creates_the_app_and_saves_its_credentials(
        tmp_path: Path, ghsim: GitHubSimulator) -> None:
    out = tmp_path / "app"
    thread, outcome, page_url = start([
        "--webhook-url", "https://cvf.acme.test/webhook", "--name", "acme-governance",
        "--org", "acme", "--github-url", "https://github.test",
        "--api-url", ghsim.base_url, "--out", str(out)])

    page = requests.get(page_url, timeout=10)
    assert page.status_code == 200
    form = FormReader()
    form.feed(page.text)
    assert form.method == "post"
    action = re.fullmatch(r"https://github\.test/organizations/acme/settings/apps/new"
                          r"\?state=([\w-]+)", form.action)
    assert action, form.action
    manifest = json.loads(form.manifest)
    shipped = json.loads((Path(__file__).parent.parent / ".github/app-manifest.json")
                         .read_text("utf-8"))
    assert manifest["name"] == "acme-governance"
    assert manifest["url"] == "https://cvf.acme.test"
    assert manifest["hook_attributes"] == {"active": True,
                                           "url": "https://cvf.acme.test/webhook"}
    assert manifest["redirect_url"] == page_url + "callback"
    assert manifest["default_permissions"] == shipped["default_permissions"]
    assert manifest["default_events"] == shipped["default_events"]

    # What github.com does after the user confirms: create the App, redirect with a code.
    ghsim.add_manifest_code("c0de-1", manifest, owner="acme")
    done = requests.get(manifest["redirect_url"],
                        params={"code": "c0de-1", "state": action.group(1)}, timeout=30)
    thread.join(30)
    assert done.status_code == 200, done.text
    assert "GitHub App created" in done.text
    result = outcome["result"]
    assert result.exit_code == 0, result.output

    facts = json.loads((out / "app.json").read_text("utf-8"))
    assert facts["slug"] == "acme-governance"
    assert facts["install_url"] == "https://github.com/apps/acme-governance/installations/new"
    key = out / "private-key.pem"
    assert key.read_text("ascii").startswith("-----BEGIN RSA PRIVATE KEY-----")
    for name in ("private-key.pem", "webhook-secret", "client-secret"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    secret = (out / "webhook-secret").read_text("utf-8")
    assert len(secret) >= 20
    assert f"export CVF_APP_ID={facts['app_id']}\n" in result.output
    assert f"export CVF_PRIVATE_KEY={key}\n" in result.output
    assert f'export CVF_WEBHOOK_SECRET="$(cat {out / "webhook-secret"})"\n' in result.output
    assert facts["install_url"] in result.output
    assert secret not in result.output  # secrets stay in their files

    # The exported values really start the bot in App mode.
    from bot.github.auth import credentials_from_env
    creds = credentials_from_env({"app_id_env": "CVF_APP_ID",
                                  "private_key_env": "CVF_PRIVATE_KEY",
                                  "token_env": "GITHUB_TOKEN"},
                                 {"CVF_APP_ID": str(facts["app_id"]),
                                  "CVF_PRIVATE_KEY": str(key)})
    assert creds.mode == "app"

    # The code worked once: GitHub answers 404 to a second conversion.
    again = requests.post(f"{ghsim.base_url}/app-manifests/c0de-1/conversions", timeout=10)
    assert again.status_code == 404


@pytest.mark.parametrize("query", [{"code": "c0de-2", "state": "forged"},
                                   {"state": None}, {"code": "unknown", "state": None}])
def test_bad_state_missing_or_unknown_code_writes_nothing(
        tmp_path: Path, ghsim: GitHubSimulator, query: dict[str, str | None]) -> None:
    out = tmp_path / "app"
    thread, outcome, page_url = start([
        "--webhook-url", "https://cvf.acme.test/webhook", "--name", "acme-governance",
        "--api-url", ghsim.base_url, "--out", str(out)])
    form = FormReader()
    form.feed(requests.get(page_url, timeout=10).text)
    assert form.action.startswith("https://github.com/settings/apps/new?state=")
    state = form.action.split("state=", 1)[1]
    ghsim.add_manifest_code("c0de-2", json.loads(form.manifest))
    params = {k: (state if v is None else v) for k, v in query.items()}
    answer = requests.get(page_url + "callback", params=params, timeout=30)
    thread.join(30)
    assert answer.status_code == 400
    assert "Nothing was written" in answer.text
    result = outcome["result"]
    assert result.exit_code != 0
    expected = {"forged": "state does not match", "missing": "carried no code",
                "unknown": "does not know this App manifest code"}
    kind = ("forged" if params.get("state") == "forged"
            else "missing" if "code" not in params else "unknown")
    assert expected[kind] in result.output
    assert not out.exists() or not any(out.iterdir())
    assert "c0de-2" in ghsim.world.manifest_codes  # the real code was never spent


def test_refuses_to_overwrite_an_existing_apps_key(tmp_path: Path) -> None:
    (tmp_path / "private-key.pem").write_text("old key")
    result = CliRunner().invoke(cli, ["app", "create", "--webhook-url",
                                      "https://cvf.acme.test/webhook", "--name", "x",
                                      "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "already holds private-key.pem" in result.output
    assert (tmp_path / "private-key.pem").read_text() == "old key"
