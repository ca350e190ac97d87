"""Untrusted input: YAML, file paths, templates, HTML pages and the HTTP endpoints.

What a pull request or a caller controls must not run code, read files outside the
repository, replace the bot's templates, inject markup into a page, or reach the API
without the token.
"""

from __future__ import annotations

import ast
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from bot.app import create_app
from bot.certification.credential import verify_credential
from bot.cli import cli
from bot.commands import register_all
from bot.config import parse_config
from bot.errors import ConfigError, CvfError, InputError
from bot.events import Router
from bot.github.signature import sign
from bot.metrics.aggregate import dashboard, window
from bot.metrics.report import render_report
from bot.metrics.store import open_store
from bot.rfc.document import parse_rfc
from bot.templating import render, templates_dir
from bot.web.metrics import create_blueprint
from bot.yamlsource import load_located

ROOT = Path(__file__).resolve().parent.parent
register_all(cli)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
UNSAFE_CALLS = {"load", "load_all", "full_load", "full_load_all", "unsafe_load",
                "unsafe_load_all"}
UNSAFE_LOADERS = {"Loader", "FullLoader", "UnsafeLoader", "CLoader", "CFullLoader",
                  "CUnsafeLoader", "Constructor", "FullConstructor", "UnsafeConstructor"}


def _python_files() -> list[Path]:
    return sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


# -- YAML -------------------------------------------------------------------------------
def test_yaml_is_only_ever_loaded_with_a_safe_loader() -> None:
    """No yaml.load/full_load/unsafe_load without a Safe loader, no unsafe loader class."""
    found = []
    for path in _python_files():
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "yaml" and node.attr in UNSAFE_LOADERS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: yaml.{node.attr}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "yaml" \
                    and node.func.attr in UNSAFE_CALLS:
                loader = next((k.value for k in node.keywords if k.arg == "Loader"),
                              node.args[1] if len(node.args) > 1 else None)
                text = ast.unparse(loader) if loader is not None else ""
                if node.func.attr.startswith(("full_", "unsafe_")) or "Safe" not in text:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: "
                                 f"{ast.unparse(node)[:80]}")
    assert found == []


@pytest.mark.parametrize("text", [
    "rfc: !!python/object/apply:os.system ['touch /tmp/cvf-pwned']\n",
    "rfc: !!python/name:os.system\n",
    "rfc: !!binary aGVsbG8=\n",
])
def test_python_tags_in_config_are_refused_not_run(text: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        parse_config(text)
    assert not Path("/tmp/cvf-pwned").exists()


def test_python_tags_in_front_matter_are_refused() -> None:
    text = "---\nrfc: !!python/object/apply:os.getcwd []\ntitle: x\n---\n\n## Summary\n"
    with pytest.raises(InputError, match="invalid YAML"):
        parse_rfc(text, path="rfcs/0001-x.md")


def test_recursive_aliases_are_an_error_not_a_crash() -> None:
    with pytest.raises(InputError, match="refers to a node that contains it"):
        load_located("status: &a [*a]\n", source="rfcs/0001-x.md")
    with pytest.raises(InputError):
        parse_rfc("---\nrfc: 1\nauthors: &a [*a]\n---\n\n## Summary\n", path="rfcs/0001-x.md")


def test_alias_bombs_are_refused() -> None:
    levels = ["a: &a [" + ",".join(["x"] * 10) + "]"]
    for name, prev in zip("bcdef", "abcde", strict=True):
        levels.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    text = "\n".join(levels) + "\n"
    with pytest.raises(InputError, match="expands to more than"):
        load_located(text, source=".github/cvf.yml")
    with pytest.raises(ConfigError):
        parse_config("rfc:\n  x-bomb:\n" + "".join(f"    {line}\n" for line in levels))
    # Modest anchors stay fine.
    assert load_located("a: &x [1, 2]\nb: *x\n", source="x").data == {"a": [1, 2], "b": [1, 2]}


# -- paths ------------------------------------------------------------------------------
def test_payload_files_outside_the_workspace_are_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "secret.json"
    outside.write_text('{"repository": {"full_name": "o/r"}}')
    (workspace / "link.json").symlink_to(outside)
    runner = CliRunner()
    env = {"GITHUB_WORKSPACE": str(workspace), "GITHUB_TOKEN": "t"}
    for given in ("../secret.json", str(outside), "link.json"):
        result = runner.invoke(cli, ["--root", str(workspace), "handle", "--event", "issues",
                                     "--payload", given], env=env)
        assert result.exit_code == 1, result.output
        assert "outside the workspace" in result.output
        assert "Traceback" not in result.output


def test_the_action_refuses_a_config_path_outside_the_workspace(tmp_path: Path) -> None:
    from bot.commands.action import _config_path

    workspace = tmp_path / "ws"
    workspace.mkdir()
    for given in ("../../etc/passwd", "/etc/passwd", "../ws2/cvf.yml"):
        with pytest.raises(ConfigError, match="outside the workspace"):
            _config_path(given, workspace)
    assert _config_path("config/cvf.yml", workspace) == "config/cvf.yml"


@pytest.mark.parametrize("title", ["../../../etc/passwd", "/etc/cron.d/x", "..\\..\\x",
                                   "a/../../b", "~/.ssh/authorized_keys"])
def test_new_rfc_files_stay_in_the_rfc_folder(title: str, tmp_path: Path) -> None:
    (tmp_path / "rfcs").mkdir()
    before = set(tmp_path.parent.rglob("*"))
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "rfc", "new", title,
                                      "--type", "standard", "--author", "alice"])
    assert "Traceback" not in result.output
    created = set(tmp_path.parent.rglob("*")) - before
    assert all(p.resolve().is_relative_to((tmp_path / "rfcs").resolve()) for p in created), \
        created
    if result.exit_code == 0:
        (made,) = [p for p in created if p.suffix == ".md"]
        assert made.parent == tmp_path / "rfcs" and ".." not in made.name


# -- templates --------------------------------------------------------------------------
def test_templates_come_from_the_package_not_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a pull_request_target run the workspace holds the PR's files: a PR that adds
    templates/ must not change what the bot writes."""
    fake = tmp_path / "templates" / "rfc"
    fake.mkdir(parents=True)
    for name in ("help.md.j2", "status-comment.md.j2", "problem.md.j2"):
        (fake / name).write_text("PWNED {{ 1 }}")
    monkeypatch.chdir(tmp_path)
    assert not templates_dir().resolve().is_relative_to(tmp_path.resolve())
    assert "PWNED" not in render("rfc/help.md.j2", lines=[])


# -- HTML -------------------------------------------------------------------------------
def test_dashboard_html_escapes_what_agents_report(tmp_path: Path) -> None:
    store = open_store(tmp_path / "m.db")
    store.ingest_lines([json.dumps({
        "id": "x1", "timestamp": "2026-03-10T11:30:00Z", "skill": "<img src=x onerror=alert(1)>",
        "agent": "<script>alert(1)</script>", "risk_level": "R1", "decision": "auto_execute",
        "success": False, "error_type": "<b>boom</b>", "latency_ms": 5, "approval": None,
        "audit": {"report_posted": True, "approval_recorded": False}, "source": "test"})])
    html = render_report(dashboard(store, window("1h", now=NOW)), "html")
    store.close()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_every_html_template_is_autoescaped() -> None:
    from bot.templating import environment

    env = environment()
    pages = [p.relative_to(templates_dir()).as_posix() for p in templates_dir().rglob("*")
             if ".htm" in p.name or ".svg" in p.name or ".xml" in p.name]
    assert pages, "no HTML templates found"
    assert all(env.autoescape(name) for name in pages), pages  # type: ignore[operator]


# -- the HTTP endpoints ----------------------------------------------------------------
class _State:
    clock = staticmethod(lambda: NOW)
    env = {"CVF_API_TOKEN": "the-api-token"}


def _metrics_client(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n")
    app = Flask("test")
    app.register_blueprint(create_blueprint(config, _State()))
    return app.test_client()


def test_api_token_is_compared_in_constant_time() -> None:
    source = (ROOT / "bot/web/metrics.py").read_text("utf-8")
    tree = ast.parse(source)
    calls = [ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert "hmac.compare_digest" in calls
    # No ordinary comparison involving the expected token anywhere.
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            text = ast.unparse(node)
            assert "expected" not in text or "not expected" in text, text
    webhook = (ROOT / "bot/github/signature.py").read_text("utf-8")
    assert "hmac.compare_digest" in webhook


@pytest.mark.parametrize("path", ["/api/metrics", "/api/executions", "/dashboard",
                                  "/api/metrics/stream"])
def test_api_needs_the_bearer_token(path: str, tmp_path: Path) -> None:
    client = _metrics_client(tmp_path)
    method = client.post if path == "/api/executions" else client.get
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "the-api-token"},
                    {"Authorization": "Basic dGhlLWFwaS10b2tlbg=="},
                    {"Authorization": "Bearer the-api-token-and-more"}):
        assert method(path, headers=headers).status_code == 401, headers
    assert method(f"{path}?token=the-api-token").status_code == 401


@pytest.mark.parametrize("verb", ["post", "put", "patch", "delete"])
def test_dashboard_is_read_only(verb: str, tmp_path: Path) -> None:
    client = _metrics_client(tmp_path)
    answer = getattr(client, verb)("/dashboard", headers={
        "Authorization": "Bearer the-api-token"})
    assert answer.status_code == 405
    assert getattr(client, verb)("/api/metrics", headers={
        "Authorization": "Bearer the-api-token"}).status_code == 405


# -- regressions found by the fuzzer -----------------------------------------------------
def test_signed_payload_with_a_misshapen_top_level_field_is_a_400() -> None:
    app = create_app(parse_config(""), router=Router(), env={"CVF_WEBHOOK_SECRET": "s"})
    client = app.test_client()
    for field in ("sender", "repository", "comment", "installation"):
        body = json.dumps({"action": "created", field: ["not", "an", "object"]}).encode()
        answer = client.post("/webhook", data=body, headers={
            "X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "d",
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, "s")})
        assert answer.status_code == 400
        assert field in answer.get_json()["error"]


def test_a_credential_with_wrongly_typed_fields_reads_as_empty_not_a_crash() -> None:
    doc = {"credentialSubject": {"id": ["x"], "achievement": ["tag"], "result": {"0": 1}}}
    result = verify_credential(json.dumps(doc), public_key=None, now=NOW)
    assert not result.ok
    assert (result.login, result.level, result.score) == ("", "", "")


def test_errors_from_bad_input_are_typed() -> None:
    assert issubclass(InputError, CvfError) and issubclass(ConfigError, CvfError)
    assert os.sep == "/"  # the path tests above assume POSIX paths
