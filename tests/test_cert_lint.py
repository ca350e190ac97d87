"""`cvf cert lint`: a bank that can be passed by its shape fails, naming the questions;
the shipped banks pass; a paper answered by shape alone scores far below the pass mark."""

from __future__ import annotations

import re
import shutil
import statistics
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.certification.bank import parse_answer_key, parse_bank
from bot.certification.exam import draw_exam
from bot.certification.grading import grade_multiple_choice
from bot.certification.lint import lint_bank
from bot.certification.program import parse_program
from bot.cli import _register_commands, cli

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "tests/fixtures/cert-keys"
BANK = "certification/questions/foundation.yml"
_register_commands()
PROGRAM = parse_program((ROOT / "certification/program.yml").read_text("utf-8"))
LEVEL = PROGRAM.level("foundation")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "certification", tmp_path / "certification")
    shutil.copytree(KEYS, tmp_path / "keys")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text("certification: {}\n")
    return tmp_path


def cvf(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--root", str(root), "cert", *args])
    return result.exit_code, result.output


def load(root: Path) -> tuple[dict, dict]:
    return (yaml.safe_load((root / BANK).read_text("utf-8")),
            yaml.safe_load((root / "keys/foundation.yml").read_text("utf-8")))


def save(root: Path, bank: dict, key: dict) -> None:
    (root / BANK).write_text(yaml.safe_dump(bank, allow_unicode=True, sort_keys=False))
    (root / "keys/foundation.yml").write_text(yaml.safe_dump(key, sort_keys=False))


def test_the_shipped_banks_and_practice_papers_pass(repo):
    code, out = cvf(repo, "lint", "--keys", str(repo / "keys"))
    assert code == 0, out
    assert "question(s) in 4 level(s): every bank passes" in out


def test_without_a_key_the_rules_about_the_answer_are_said_to_be_skipped(repo):
    code, out = cvf(repo, "lint")
    assert code == 0, out
    assert ("certification/questions/foundation.yml: no answer key given, so the rules about "
            "the correct option were not checked") in out


def test_a_bank_whose_answer_is_the_longest_option_fails_naming_the_questions(repo):
    bank, key = load(repo)
    for question in bank["questions"][:60]:
        right = key["answers"][question["id"]]
        question["options"][right] += " (the behaviour described in the lesson and the README)"
    save(repo, bank, key)
    code, out = cvf(repo, "lint", "--keys", str(repo / "keys"))
    assert code == 1
    found = re.search(r"error: certification/questions/foundation.yml:\d+: foundation: the "
                      r"correct option is the longest in (\d+) of 102 questions \((\d+)%; at "
                      r"most 35%", out)
    assert found and int(found.group(1)) >= 60, out
    assert "F-001" in out and "F-060" in out


def test_a_bank_whose_answer_is_always_in_one_place_fails(repo):
    bank, key = load(repo)
    for question in bank["questions"]:
        right = key["answers"][question["id"]]
        options = question["options"]
        options["a"], options[right] = options[right], options["a"]
        key["answers"][question["id"]] = "a"
    save(repo, bank, key)
    code, out = cvf(repo, "lint", "--keys", str(repo / "keys"))
    assert code == 1
    assert ("foundation: the correct option is option a in 100% of questions; uniform is 25% "
            "(within 10%): move the answer elsewhere in some of F-001, F-002") in out
    assert "the correct option is option b in 0% of questions" in out


def test_a_duplicate_option_fails_naming_the_question(repo):
    bank, key = load(repo)
    question = bank["questions"][9]
    question["options"]["d"] = question["options"]["b"].upper() + "."
    save(repo, bank, key)
    code, out = cvf(repo, "lint", "--keys", str(repo / "keys"))
    assert code == 1
    line = (repo / BANK).read_text().splitlines().index("- id: F-010") + 1
    assert re.search(rf"error: certification/questions/foundation.yml:{line}: F-010: options b "
                     r"and d say the same thing", out), out


def test_catch_all_and_empty_distractors_fail_unless_intended(repo):
    bank, key = load(repo)
    wrong = next(o for o in "abcd" if o != key["answers"]["F-020"])
    bank["questions"][19]["options"][wrong] = "All of the above"
    wrong = next(o for o in "abcd" if o != key["answers"]["F-021"])
    bank["questions"][20]["options"][wrong] = "n/a"
    save(repo, bank, key)
    code, out = cvf(repo, "lint", "--keys", str(repo / "keys"))
    assert code == 1
    assert "F-020: option" in out and "('All of the above') is a catch-all" in out
    assert "F-021: option" in out and "('n/a') is a placeholder" in out
    bank["questions"][19]["catch_all"] = True
    bank["questions"][20]["options"][wrong] = "Nothing; the vote is shown as late"
    save(repo, bank, key)
    assert cvf(repo, "lint", "--keys", str(repo / "keys"))[0] == 0


def test_an_objective_without_questions_fails(repo):
    bank, key = load(repo)
    dropped = [q["id"] for q in bank["questions"] if q["objective"] == "F2.3"]
    bank["questions"] = [q for q in bank["questions"] if q["objective"] != "F2.3"]
    for qid in dropped:
        del key["answers"][qid]
    save(repo, bank, key)
    code, out = cvf(repo, "lint", "--keys", str(repo / "keys"))
    assert code == 1
    assert ("foundation: objective F2.3 (Describe what the cvf/routing check needs before a PR "
            "may merge.) has no question; add one tagged `objective: F2.3`") in out


def test_a_thin_module_fails():
    text = (ROOT / BANK).read_text("utf-8")
    bank = parse_bank(text, PROGRAM, source=BANK)
    key = parse_answer_key((KEYS / "foundation.yml").read_text("utf-8"), bank, source="key")
    findings = lint_bank(bank, LEVEL, key, minimum=40)
    assert [f.message for f in findings if f.rule == "module_size"] == [
        f"foundation: module {m} has 34 question(s); it needs at least 40"
        for m in ("rfc-lifecycle", "risk-routing", "metrics-basics")]


def _longest(item) -> str:
    return max(item.choices, key=lambda c: len(c.text)).letter


def _shortest(item) -> str:
    return min(item.choices, key=lambda c: len(c.text)).letter


@pytest.mark.parametrize("strategy", ["longest", "first", "shortest", "last"])
def test_answering_by_shape_alone_scores_well_under_half(strategy):
    bank = parse_bank((ROOT / BANK).read_text("utf-8"), PROGRAM, source=BANK)
    key = parse_answer_key((KEYS / "foundation.yml").read_text("utf-8"), bank, source="key")
    scores = []
    for seed in range(400):
        paper = draw_exam(bank, LEVEL, f"candidate-{seed}", 1 + seed % 3, 4)
        pick = {"longest": _longest, "shortest": _shortest,
                "first": lambda item: item.choices[0].letter,
                "last": lambda item: item.choices[-1].letter}[strategy]
        answers = {item.question_id: pick(item) for item in paper.items}
        scores.append(grade_multiple_choice(paper, answers, key, LEVEL).score)
    assert statistics.mean(scores) < 50
    assert sum(s >= LEVEL.pass_score for s in scores) / len(scores) < 0.02


LESSON = "certification/lessons/foundation/risk-routing.md"


def _drop_section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.index("\n## ", start + 1)
    return text[:start] + text[end + 1:]


def test_an_objective_no_lesson_teaches_fails_lint_and_the_catalog(repo):
    lesson = repo / LESSON
    lesson.write_text(_drop_section(lesson.read_text(), "## F2.3"))
    for command in (("lint", "--keys", str(repo / "keys")), ("catalog",)):
        code, out = cvf(repo, *command)
        assert code == 1, out
        assert (f"error: {LESSON}: objective F2.3 (Describe what the cvf/routing check needs "
                "before a PR may merge.) is not taught: it has no `## F2.3` section") in out


def test_a_missing_lesson_and_lessons_that_do_not_fill_the_hours_fail(repo):
    (repo / LESSON).unlink()
    code, out = cvf(repo, "catalog")
    assert code == 1
    assert ("foundation: module risk-routing has no lesson, so F2.1, F2.2, F2.3, F2.4 are "
            "taught nowhere") in out
    shutil.copy(ROOT / LESSON, repo / LESSON)
    lesson = repo / LESSON
    lesson.write_text(lesson.read_text().replace("minutes: 80", "minutes: 20", 1))
    code, out = cvf(repo, "catalog")
    assert code == 1
    assert ("foundation: the lessons take 180 minutes but the level promises 4 hours (240 "
            "minutes)") in out


def test_a_thin_section_is_not_teaching(repo):
    lesson = repo / LESSON
    text = lesson.read_text()
    start = text.index("## F2.2")
    end = text.index("\n## ", start + 1)
    lesson.write_text(text[:start] + "## F2.2 Choosing an agent\n\nThe least loaded one.\n\n"
                      "```console\n$ cvf route --skill docs\n```\n" + text[end:])
    code, out = cvf(repo, "lint")
    assert code == 1
    assert "objective F2.2 (Explain how an agent is chosen by capability and load.) is not " \
           "taught: its section has 7 words of prose and 1 example(s)" in out


def test_the_catalog_shows_lessons_hours_examination_and_holders(repo):
    code, out = cvf(repo, "catalog")
    assert code == 0, out
    text = (repo / "certification/README.md").read_text()
    assert "| [CVF Specialist](#specialist) | 20 | routing, monitoring, v1.3 |" in text
    assert ("Lesson: [Risk levels and skill routing](lessons/foundation/risk-routing.md) · "
            "80 minutes") in text
    assert ("- **S2.4** Explain an incident from execution records alone. *Examined by "
            "criterion diagnosis.*") in text
    assert "Holders: none yet." in text


def test_the_program_ships_12_projects_16_cases_and_20_scenarios():
    from bot.certification.rubric import parse_rubric

    counts = {}
    for level in ("practitioner", "architect", "specialist"):
        rubric = parse_rubric((ROOT / f"certification/rubrics/{level}.yml").read_text("utf-8"),
                              PROGRAM, source=level)
        counts[level] = len(rubric.assignments)
        for assignment in rubric.assignments:
            if level == "specialist":
                assert (ROOT / f"certification/scenarios/{assignment.scenario}.yml").is_file()
            else:
                assert assignment.starting_state and len(assignment.checks) >= 2
    assert counts == {"practitioner": 12, "architect": 16, "specialist": 20}
    scenarios = {p.stem for p in (ROOT / "certification/scenarios").glob("*.yml")}
    assert len(scenarios) == 20
    assert scenarios == {p.stem for p in (ROOT / "tests/fixtures/cert-solutions").glob("*.yml")}


def test_an_assignment_without_a_starting_state_or_checks_fails(repo):
    rubric = repo / "certification/rubrics/architect.yml"
    data = yaml.safe_load(rubric.read_text())
    del data["assignments"][3]["starting_state"]
    data["assignments"][3]["checks"] = ["the RFC is good"]
    rubric.write_text(yaml.safe_dump(data, sort_keys=False))
    code, out = cvf(repo, "lint")
    assert code == 1
    assert ("certification/rubrics/architect.yml: assignment secret-rotation has no "
            "`starting_state`") in out
    assert "assignment secret-rotation lists 1 `checks`; say at least two" in out
