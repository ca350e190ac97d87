"""`cvf cert …` as a person runs it: output, files written and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import _register_commands, cli

ROOT = Path(__file__).resolve().parent.parent
_register_commands()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "certification", tmp_path / "certification")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text(
        "certification:\n  issuer: {id: 'https://github.com/octo-org', name: Octo}\n")
    return tmp_path


def cvf(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--root", str(root), "cert", *args])
    return result.exit_code, result.output


def test_keygen_issue_verify_tamper_revoke(repo, tmp_path):
    code, out = cvf(repo, "keygen", "--out", str(tmp_path / "keys"))
    assert code == 0 and "key id: did:key:z6Mk" in out
    assert (tmp_path / "keys" / "private-key.pem").stat().st_mode & 0o077 == 0
    shutil.copy(tmp_path / "keys" / "public-key.pem", repo / "certification/issuer/public-key.pem")
    cert = tmp_path / "alice.json"
    code, out = cvf(repo, "issue", "--login", "alice", "--level", "foundation", "--score", "82",
                    "--evidence", "https://github.com/octo-org/governance/pull/10",
                    "--key", str(tmp_path / "keys" / "private-key.pem"), "--out", str(cert),
                    "--register")
    assert code == 0, out
    code, out = cvf(repo, "verify", str(cert))
    assert code == 0 and "valid — alice holds foundation (score 82)" in out

    doc = json.loads(cert.read_text())
    doc["credentialSubject"]["result"][0]["value"] = "97"
    cert.write_text(json.dumps(doc, indent=2))
    code, out = cvf(repo, "verify", str(cert))
    assert code == 1
    assert 'credentialSubject.result[0].value: is "97" but the issuer recorded "82"' in out
    assert "the signature does not match the content" in out

    doc["credentialSubject"]["result"][0]["value"] = "82"
    cert.write_text(json.dumps(doc, indent=2))
    assert cvf(repo, "verify", str(cert))[0] == 0
    code, out = cvf(repo, "revoke", str(cert), "--reason", "shared the exam",
                    "--now", "2026-04-01T00:00:00Z")
    assert code == 0 and "revoked urn:uuid:" in out
    code, out = cvf(repo, "verify", str(cert))
    assert code == 1 and "was revoked on 2026-04-01T00:00:00Z (shared the exam)" in out
    code, out = cvf(repo, "progress", "alice")
    assert "foundation    available" in out  # the revoked certificate no longer counts


def test_issue_refuses_a_failing_score_and_a_missing_key(repo, tmp_path):
    code, out = cvf(repo, "issue", "--login", "a", "--level", "foundation", "--score", "69",
                    "--evidence", "https://x.test/1", "--key", str(tmp_path / "none.pem"),
                    "--out", str(tmp_path / "c.json"))
    assert code == 1 and "score 69 is below the foundation pass score 70" in out
    code, out = cvf(repo, "issue", "--login", "a", "--level", "foundation", "--score", "90",
                    "--evidence", "https://x.test/1", "--key", str(tmp_path / "none.pem"),
                    "--out", str(tmp_path / "c.json"))
    assert code == 1 and "private key not found" in out


def test_progress_shows_levels_attempts_and_next_step(repo):
    registry = {"version": 1, "certificates": [
        {"id": "urn:uuid:x", "login": "bob", "level": "foundation", "attempt": 1, "score": 80,
         "issued": "2026-01-01T00:00:00Z", "valid_until": None, "file": "f.json",
         "evidence": "https://x.test/1"}],
        "attempts": [{"login": "bob", "level": "practitioner", "attempt": 1, "status": "failed",
                      "score": 60, "graded_at": "2026-02-01T00:00:00Z", "request": 3}]}
    (repo / "certification/registry.json").write_text(json.dumps(registry))
    code, out = cvf(repo, "progress", "bob", "--now", "2026-02-03T00:00:00Z")
    assert code == 0
    assert out.splitlines() == [
        "bob",
        "  foundation    held",
        "  practitioner  retake from 2026-02-08T00:00:00Z",
        "      attempt 1: failed, score 60, graded 2026-02-01T00:00:00Z",
        "  architect     locked (needs practitioner)",
        "  specialist    locked (needs architect)",
        "next step: retake practitioner with `/cert request practitioner` from "
        "2026-02-08T00:00:00Z",
    ]


def test_catalog_in_the_repository_is_current():
    code, out = cvf(ROOT, "catalog", "--check")
    assert code == 0, out


def test_catalog_renders_levels_objectives_and_holders(repo):
    registry = {"version": 1, "attempts": [], "certificates": [
        {"id": "urn:uuid:y", "login": "carol", "level": "practitioner", "attempt": 1,
         "score": 80, "issued": "2026-01-01T00:00:00Z", "valid_until": None, "file": "f",
         "evidence": "https://x.test/1"}]}
    (repo / "certification/registry.json").write_text(json.dumps(registry))
    assert cvf(repo, "catalog", "--check")[0] == 1
    code, _ = cvf(repo, "catalog")
    text = (repo / "certification/README.md").read_text()
    assert code == 0
    assert "| [CVF Specialist](#specialist) | 20 | routing, monitoring, v1.3 | scenario " \
           "simulation | 85 | architect | 0 |" in text
    assert "| [CVF Foundation](#foundation) | 4 |" in text and "| 1 |" in text
    assert "- **S2.1** Set alert thresholds" in text
    assert "Holders: [carol](https://github.com/carol)" in text


def test_exam_preview_matches_the_bots_draw(repo):
    code, out = cvf(repo, "exam", "alice", "foundation")
    assert code == 0 and out.count("   A) ") == 12
    assert cvf(repo, "exam", "alice", "foundation")[1] == out
    assert cvf(repo, "exam", "bob", "foundation")[1] != out
    code, out = cvf(repo, "exam", "alice", "architect")
    assert code == 1 and "architect is a case study exam, not multiple choice" in out


def test_practice_paper_is_graded_with_explanations(repo, tmp_path):
    answers = tmp_path / "a.yml"
    answers.write_text("level: foundation\nanswers: {FP-001: a, FP-002: c, FP-003: d, "
                       "FP-004: a, FP-005: d, FP-006: a, FP-007: b, FP-008: c, FP-009: b, "
                       "FP-010: d, FP-011: a, FP-012: c}\n")
    code, out = cvf(repo, "practice", str(answers))
    assert code == 0 and "practice score 92/100 (11/12)" in out
    assert "   FP-004: you a, answer b. Commands in quotes, code fences" in out


@pytest.mark.parametrize("level", ["practitioner", "architect", "specialist"])
def test_every_level_has_a_practice_paper_with_its_key(repo, tmp_path, level):
    key = yaml.safe_load((repo / f"certification/practice/{level}-sample-key.yml").read_text())
    answers = tmp_path / "a.yml"
    answers.write_text(yaml.safe_dump({"level": level, "answers": key["answers"]}))
    code, out = cvf(repo, "practice", str(answers))
    assert code == 0 and "practice score 100/100 (8/8)" in out, out
    assert all(f"ok {qid}: you {right}, answer {right}. {key['explanations'][qid]}" in out
               for qid, right in key["answers"].items())


def test_a_broken_program_is_reported_with_its_line(repo):
    program = repo / "certification/program.yml"
    program.write_text(program.read_text().replace("hours: 12", "hours: twelve"))
    code, out = cvf(repo, "catalog")
    assert code == 1
    assert "error: certification/program.yml:" in out
    assert "levels.1.hours: expected a whole number, got a string \"twelve\"" in out


def test_verify_from_a_subprocess_exits_1_without_a_traceback(repo, tmp_path):
    broken = tmp_path / "c.json"
    broken.write_text('{"id": "urn:uuid:1"}')
    result = subprocess.run([sys.executable, "-c", "from bot.cli import main; main()",
                             "--root", str(repo), "cert", "verify", str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: {broken}: proof: missing; the credential is not signed" in result.stderr


def test_audit_checks_every_registered_certificate(repo, tmp_path):
    cvf(repo, "keygen", "--out", str(tmp_path / "keys"))
    shutil.copy(tmp_path / "keys" / "public-key.pem", repo / "certification/issuer/public-key.pem")
    out_file = repo / "certification/certificates/dan-foundation-1.json"
    cvf(repo, "issue", "--login", "dan", "--level", "foundation", "--score", "90",
        "--evidence", "https://github.com/octo-org/governance/pull/3",
        "--key", str(tmp_path / "keys" / "private-key.pem"), "--out", str(out_file), "--register")
    code, out = cvf(repo, "audit")
    assert code == 0 and "1 certificate(s): 1 valid, 0 revoked" in out
    out_file.write_text(out_file.read_text().replace("github.com/dan", "github.com/eve"))
    code, out = cvf(repo, "audit")
    assert code == 1
    assert ("certification/certificates/dan-foundation-1.json: credentialSubject.id: is "
            '"https://github.com/eve" but the issuer recorded "https://github.com/dan"') in out
