"""Attacks on the bot's inputs (issue #14): deep JSON, endless lines, oversized configs.

Each test plays the attack against what a user runs: the webhook app under a real WSGI
server over HTTP, and the ``cvf`` command line in a subprocess. SECURITY.md lists the
promise each of these holds the bot to.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import create_app
from bot.config import load_config, parse_config
from bot.errors import ConfigError, InputError
from bot.events import Router
from bot.github.signature import sign
from bot.jsonlimits import MAX_DEPTH, TooDeep, depth, loads
from bot.metrics.ingest import MAX_LINE
from bot.yamlsource import MAX_BYTES, load_located
from tests.conftest import LocalServer, post_webhook
from tests.fake_github import FakeGitHub

SECRET = "limits-secret"
TOKEN = "limits-api-token"
DEEP = 100_000
BODIES = {"array": b"[" * DEEP + b"]" * DEEP,
          "object": b'{"a":' * DEEP + b"1" + b"}" * DEEP}

pytestmark = pytest.mark.usefixtures("delivery_logs_flow")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("CVF_API_TOKEN", TOKEN)
    config = parse_config(f"metrics:\n  store: {tmp_path}/m.db\n")
    app = create_app(config, github_factory=lambda *a, **k: FakeGitHub(), router=Router(),
                     env={"CVF_WEBHOOK_SECRET": SECRET, "CVF_API_TOKEN": TOKEN})
    local = LocalServer(app)
    yield local.url
    local.close()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def _json_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.getMessage().startswith("{")]


# -- deep JSON ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", sorted(BODIES))
def test_a_deep_signed_webhook_is_a_400_with_a_json_log_line(
        server: str, shape: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cvf")
    status, body = post_webhook(server, "issue_comment", BODIES[shape], secret=SECRET,
                                delivery="deep-1")
    assert status == 400, body[:300]
    answer = json.loads(body)
    assert answer["delivery"] == "deep-1"
    assert f"nested {DEEP} levels deep; at most {MAX_DEPTH}" in answer["error"]
    lines = _json_lines(caplog)
    assert [(x["delivery"], x["status"], x["outcome"]) for x in lines] == \
        [("deep-1", 400, "too_deep")]


def test_a_deep_form_encoded_webhook_is_a_400(server: str) -> None:
    body = urllib.parse.urlencode({"payload": BODIES["array"].decode()}).encode()
    status, kind, answer = _post(f"{server}/webhook", body, {
        "X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "deep-form",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Hub-Signature-256": sign(body, SECRET)})
    assert (status, kind) == (400, "application/json")
    assert "levels deep" in json.loads(answer)["error"]


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_deep_records_on_the_api_are_a_400(server: str, shape: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cvf")
    status, kind, answer = _post(f"{server}/api/executions", BODIES[shape],
                                 {"Authorization": f"Bearer {TOKEN}"})
    assert (status, kind) == (400, "application/json"), answer[:300]
    assert "levels deep" in json.loads(answer)["error"]
    assert [(x["status"], x["path"]) for x in _json_lines(caplog)] == \
        [(400, "/api/executions")]


def _cvf(root: Path, *args: str, stdin: bytes | None = None,
         stdin_file: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "bot", "--root", str(root), *args]
    if stdin_file is not None:
        with stdin_file.open("rb") as fh:
            return subprocess.run(command, capture_output=True, stdin=fh, cwd=root,
                                  timeout=120, check=False)
    return subprocess.run(command, capture_output=True, input=stdin, cwd=root, timeout=120,
                          check=False)


@pytest.mark.parametrize("shape", sorted(BODIES))
def test_deep_lines_in_metrics_ingest_are_an_error_line(tmp_path: Path, shape: str) -> None:
    (tmp_path / "deep.jsonl").write_bytes(BODIES[shape] + b"\n")
    done = _cvf(tmp_path, "metrics", "ingest", "deep.jsonl")
    assert done.returncode == 1
    err = done.stderr.decode()
    assert f"error: deep.jsonl:1: JSON nested {DEEP} levels deep" in err, err
    assert "Traceback" not in err


def test_depth_is_measured_outside_strings_and_without_recursion() -> None:
    assert depth('[1, "[[[[", {"a": ["]"]}]') == 3
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(TooDeep):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


# -- endless lines ------------------------------------------------------------------------
def test_ingest_of_dev_zero_is_refused_at_line_one_without_growing(tmp_path: Path) -> None:
    """`cvf metrics ingest - < /dev/zero` stops after reading one line's limit."""
    script = ("import resource, subprocess, sys\n"
              "done = subprocess.run([sys.executable, '-m', 'bot', '--root', sys.argv[1], "
              "'metrics', 'ingest', '-'], stdin=open('/dev/zero', 'rb'), "
              "capture_output=True, timeout=60)\n"
              "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
              "print(done.returncode, peak, done.stderr.decode().splitlines()[0])\n")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, check=True).stdout.split(" ", 2)
    code, peak_kib, first = int(out[0]), int(out[1]), out[2]
    assert code == 1
    assert first.startswith(f"error: stdin:1: line longer than {MAX_LINE:,} bytes")
    assert peak_kib < 300 * 1024  # the interpreter and its imports, not the input


def test_a_long_line_is_refused_with_its_number(tmp_path: Path) -> None:
    good = json.dumps({"timestamp": "2026-03-10T11:00:00Z", "skill": "s", "agent": "a",
                       "risk_level": "R1", "decision": "auto_execute", "success": True,
                       "latency_ms": 5})
    path = tmp_path / "runs.jsonl"
    path.write_bytes((good + "\n").encode() * 3 + b'{"x": "' + b"y" * (MAX_LINE + 10) + b'"}\n')
    done = _cvf(tmp_path, "metrics", "ingest", "runs.jsonl")
    assert done.returncode == 1
    assert done.stderr.decode().startswith(f"error: runs.jsonl:4: line longer than {MAX_LINE:,}")
    # Nothing was stored: the file is whole or nothing.
    assert _cvf(tmp_path, "metrics", "export").stdout == b""


# -- oversized config ---------------------------------------------------------------------
def test_an_oversized_config_is_refused_early_for_its_size(tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    big = "rfc:\n" + "".join(f"  k{i}: {i}\n" for i in range(900_000))
    (tmp_path / ".github" / "cvf.yml").write_text(big)
    with pytest.raises(ConfigError, match=f"over the {MAX_BYTES:,}-byte limit"):
        load_config(root=tmp_path)
    done = _cvf(tmp_path, "check")
    err = done.stderr.decode()
    assert done.returncode != 0 and "-byte limit for a YAML document" in err, err
    assert "alias" not in err
    # The same text arriving as a repository's config (read from GitHub) is refused too.
    with pytest.raises(ConfigError, match="-byte limit"):
        parse_config(big)


def test_many_values_without_aliases_are_not_blamed_on_aliases() -> None:
    text = "k:\n" + "".join(f"  - {i}\n" for i in range(100_001))
    assert len(text) < MAX_BYTES
    with pytest.raises(InputError) as caught:
        load_located(text, source=".github/cvf.yml")
    assert "has more than 100,000 values" in str(caught.value)
    assert "alias" not in str(caught.value)


def test_an_unexpected_error_answers_json_with_a_log_line(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cvf")
    app = create_app(parse_config(""), github_factory=lambda *a, **k: FakeGitHub(),
                     router=Router(), env={"CVF_WEBHOOK_SECRET": SECRET})

    def boom() -> str:
        raise RecursionError("maximum recursion depth exceeded")

    app.add_url_rule("/boom", view_func=boom)
    answer = app.test_client().get("/boom")
    assert (answer.status_code, answer.mimetype) == (500, "application/json")
    assert answer.get_json() == {"error": "internal error; see the bot's log"}
    assert any(line.get("outcome") == "unexpected" for line in _json_lines(caplog))
    assert app.test_client().get("/nowhere").status_code == 404
