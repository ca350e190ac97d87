"""`cvf cert stats`: item statistics from the papers candidates really sat."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.certification.bank import parse_answer_key, parse_bank
from bot.certification.exam import draw_exam
from bot.certification.itemstats import Attempt, item_statistics
from bot.certification.program import parse_program
from bot.cli import _register_commands, cli

ROOT = Path(__file__).resolve().parent.parent
_register_commands()
PROGRAM = parse_program((ROOT / "certification/program.yml").read_text("utf-8"))
LEVEL = PROGRAM.level("foundation")
BANK = parse_bank((ROOT / "certification/questions/foundation.yml").read_text("utf-8"), PROGRAM,
                  source="bank")
KEY = parse_answer_key((ROOT / "tests/fixtures/cert-keys/foundation.yml").read_text("utf-8"),
                       BANK, source="key")


def test_difficulty_discrimination_and_flags():
    attempts = [
        Attempt("p1", 1, {"F-001": True, "F-002": True, "F-003": False, "F-004": True}, True, 90),
        Attempt("p2", 1, {"F-001": True, "F-002": True, "F-003": False, "F-004": False}, True, 80),
        Attempt("f1", 1, {"F-001": True, "F-002": False, "F-003": False, "F-004": True}, False, 40),
        Attempt("f2", 1, {"F-001": True, "F-002": False, "F-003": False, "F-004": True}, False, 30),
    ]
    rows = {r.question: r for r in item_statistics(BANK, attempts)}
    assert rows["F-001"].difficulty == 1.0
    assert rows["F-001"].flags == ("everybody gets it right: it measures nothing",)
    assert rows["F-002"].difficulty == 0.5 and rows["F-002"].discrimination == 1.0
    assert rows["F-002"].flags == ()
    assert rows["F-003"].flags == ("nobody gets it right: check the key and the wording",)
    assert rows["F-004"].discrimination == -0.5
    assert rows["F-004"].flags == ("failing candidates do better than passing ones: ambiguous "
                                   "or mis-keyed",)
    assert rows["F-005"].answered == 0 and rows["F-005"].difficulty is None


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "certification", tmp_path / "certification")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text("certification: {}\n")
    return tmp_path


def submit(repo: Path, login: str, *, right: bool) -> None:
    paper = draw_exam(BANK, LEVEL, login, 1, 4)
    lines = ["level: foundation", "attempt: 1", "answers:"]
    for item in paper.items:
        wanted = KEY.answers[item.question_id]
        choice = next(c for c in item.choices if (c.option == wanted) == right)
        lines.append(f"  {item.question_id}: {choice.letter}")
    folder = repo / "certification/submissions" / login
    folder.mkdir(parents=True)
    (folder / "foundation.yml").write_text("\n".join(lines) + "\n")


def test_the_command_regrades_every_submission_on_its_own_paper(repo):
    for login in ("ana", "ben", "cy"):
        submit(repo, login, right=True)
    for login in ("dee", "eli"):
        submit(repo, login, right=False)
    result = CliRunner().invoke(cli, ["--root", str(repo), "cert", "stats", "foundation",
                                      "--key", str(ROOT / "tests/fixtures/cert-keys/"
                                                   "foundation.yml")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "foundation: 5 graded attempt(s), 3 passed, 2 failed" in out
    assert "question  objective answered difficulty discrimination  flags" in out
    ana = draw_exam(BANK, LEVEL, "ana", 1, 4)
    dee = draw_exam(BANK, LEVEL, "dee", 1, 4)
    shared = sorted({i.question_id for i in ana.items} & {i.question_id for i in dee.items})
    seen = [line for line in out.splitlines() if line.startswith(tuple(shared))]
    assert seen and all("+1.00" in line for line in seen)
    never = next(q.id for q in BANK.questions if all(
        q.id not in {i.question_id for i in draw_exam(BANK, LEVEL, u, 1, 4).items}
        for u in ("ana", "ben", "cy", "dee", "eli")))
    assert any(line.startswith(never) and line.endswith("not answered yet")
               for line in out.splitlines())


def test_stats_without_a_key_says_how_to_give_one(repo, monkeypatch):
    monkeypatch.delenv("CVF_CERT_ANSWER_KEY", raising=False)
    result = CliRunner().invoke(cli, ["--root", str(repo), "cert", "stats", "foundation"])
    assert result.exit_code == 1
    assert "no answer key" in result.output and "pass --key FILE" in result.output
