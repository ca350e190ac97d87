"""Certification core: the program, exams, grading, reviewers, records and the gate,
with the repository's own program, banks and rubrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.certification.bank import parse_answer_key, parse_bank
from bot.certification.documents import DocumentError
from bot.certification.exam import draw_exam
from bot.certification.gate import LevelGate, holds_level
from bot.certification.grading import SubmissionError, grade_multiple_choice
from bot.certification.program import parse_program
from bot.certification.registry import (
    add_revocation,
    check_request,
    parse_registry,
    with_attempt,
    with_certificate,
)
from bot.certification.rubric import ReviewerGrade, consensus, parse_grade, parse_rubric
from bot.config import parse_config
from bot.errors import CvfError, InputError

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def text(path: str) -> str:
    return (ROOT / path).read_text("utf-8")


@pytest.fixture(scope="module")
def program():
    return parse_program(text("certification/program.yml"))


@pytest.fixture(scope="module")
def bank(program):
    return parse_bank(text("certification/questions/foundation.yml"), program, source="bank")


def key_for(bank, *, right: bool = True):
    """A temporary answer key: option ``a`` is right for every question (tests only)."""
    lines = ["level: foundation", "answers:"]
    lines += [f"  {q.id}: a" for q in bank.questions]
    return parse_answer_key("\n".join(lines) + "\n", bank, source="tmp-key")


def answers_for(paper, key, wrong: int = 0) -> dict[str, str]:
    """Letters that answer the paper, getting the first ``wrong`` questions wrong."""
    out = {}
    for index, item in enumerate(paper.items):
        right = key.answers[item.question_id]
        pick = next(c for c in item.choices if (c.option == right) != (index < wrong))
        out[item.question_id] = pick.letter
    return out


# -- program -------------------------------------------------------------------------
def test_program_has_the_four_levels_as_designed(program):
    rows = [(lv.id, lv.hours, lv.exam_format, lv.pass_score, lv.prerequisites)
            for lv in program.levels]
    assert rows == [
        ("foundation", 4, "multiple_choice", 70, ()),
        ("practitioner", 12, "practical_project", 75, ("foundation",)),
        ("architect", 16, "case_study", 80, ("practitioner",)),
        ("specialist", 20, "scenario_simulation", 85, ("architect",)),
    ]
    assert all(len(m.objectives) == 4 for lv in program.levels for m in lv.modules)


def test_program_errors_name_file_line_and_key():
    bad = text("certification/program.yml").replace("pass_score: 85", "pass_score: high")
    with pytest.raises(DocumentError) as info:
        parse_program(bad, source="certification/program.yml")
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if "pass_score: high" in t)
    assert info.value.problems == [
        f"certification/program.yml:{line}: levels.3.exam.pass_score: "
        f'expected a whole number, got a string "high"']


def test_unknown_prerequisite_is_located_with_the_levels_it_could_be():
    bad = text("certification/program.yml").replace("prerequisites: [architect]",
                                                   "prerequisites: [architcet]")
    with pytest.raises(DocumentError) as info:
        parse_program(bad)
    assert "levels.3.prerequisites.0: unknown prerequisite 'architcet'" in info.value.problems[0]
    assert "foundation, practitioner, architect" in info.value.problems[0]


def test_three_objectives_in_a_module_is_an_error():
    bad = text("certification/program.yml").replace(
        '          - {id: F1.4, text: "Use the /rfc and /vote commands, including blocking '
        'concerns."}\n', "")
    with pytest.raises(DocumentError) as info:
        parse_program(bad)
    assert "levels.0.modules.0.objectives" in info.value.problems[0]


def test_prerequisites_are_transitive(program):
    assert program.missing_prerequisites("architect", []) == ["practitioner"]
    assert program.missing_prerequisites("architect", ["practitioner"]) == []
    assert program.covered_by(["architect"]) == {"foundation", "practitioner", "architect"}
    with pytest.raises(InputError, match="did you mean 'architect'"):
        program.level("architekt")


# -- bank and exam drawing -----------------------------------------------------------
def test_bank_has_at_least_25_questions_each_on_a_foundation_objective(program, bank):
    assert len(bank.questions) >= 25
    objectives = {o.id for o in program.level("foundation").objectives}
    assert {q.objective for q in bank.questions} == objectives  # every objective is tested


def test_bank_rejects_a_question_on_another_levels_objective(program):
    bad = text("certification/questions/foundation.yml").replace("objective: F1.1",
                                                                 "objective: S1.1", 1)
    with pytest.raises(DocumentError, match="objective 'S1.1' is not one of level foundation"):
        parse_bank(bad, program, source="q.yml")


def test_draw_is_reproducible_per_candidate_and_differs_between_candidates(program, bank):
    level = program.level("foundation")
    first = draw_exam(bank, level, "alice", 1, 4)
    again = draw_exam(bank, level, "Alice", 1, 4)
    other = draw_exam(bank, level, "bob", 1, 4)
    retake = draw_exam(bank, level, "alice", 2, 4)
    assert first.items == again.items and first.seed == again.seed
    assert len(first.items) == 12
    per_module = {m.id: sum(1 for i in first.items if i.module == m.id) for m in level.modules}
    assert set(per_module.values()) == {4}
    assert [i.question_id for i in first.items] != [i.question_id for i in other.items]
    assert [i.question_id for i in first.items] != [i.question_id for i in retake.items]
    # options are shuffled too: the same question does not keep its letters
    papers = [draw_exam(bank, level, f"candidate-{n}", 1, 4) for n in range(20)]
    shared = [(q, p.item(q.question_id)) for p in papers for q in first.items
              if p.item(q.question_id)]
    assert shared
    assert any([c.option for c in q.choices] != [c.option for c in o.choices]  # type: ignore
               for q, o in shared)


# -- multiple-choice grading ---------------------------------------------------------
def test_grading_scores_per_objective_and_against_the_pass_score(program, bank):
    level = program.level("foundation")
    key = key_for(bank)
    paper = draw_exam(bank, level, "alice", 1, 4)
    result = grade_multiple_choice(paper, answers_for(paper, key, wrong=3), key, level)
    assert (result.correct, result.total, result.score, result.passed) == (9, 12, 75, True)
    assert sum(o.total for o in result.objectives) == 12
    assert sum(o.correct for o in result.objectives) == 9
    failed = grade_multiple_choice(paper, answers_for(paper, key, wrong=4), key, level)
    assert (failed.score, failed.passed) == (67, False)


def test_bad_answers_are_each_named(program, bank):
    level = program.level("foundation")
    key = key_for(bank)
    paper = draw_exam(bank, level, "alice", 1, 4)
    answers = answers_for(paper, key)
    first, second = paper.items[0].question_id, paper.items[1].question_id
    del answers[first]
    answers[second] = "Z"
    answers["F-999"] = "A"
    with pytest.raises(SubmissionError) as info:
        grade_multiple_choice(paper, answers, key, level)
    problems = info.value.problems
    assert "answers.F-999: no question 'F-999' on your paper (attempt 1)" in problems[0]
    assert any(f"answers.{second}: 'Z' is not a choice (choose one of A, B, C, D)" in p
               for p in problems)
    assert any(f"missing answers for {first}" in p for p in problems)


def test_grading_refuses_a_key_for_another_level_or_missing_answers(program, bank):
    level = program.level("foundation")
    key = key_for(bank)
    paper = draw_exam(bank, level, "alice", 1, 4)
    short = type(key)(level="foundation", answers={})
    with pytest.raises(CvfError, match="the answer key has no answer for"):
        grade_multiple_choice(paper, answers_for(paper, key), short, level)
    with pytest.raises(DocumentError, match="no answer for"):
        parse_answer_key("level: foundation\nanswers: {F-001: a}\n", bank, source="k")


def test_practice_key_matches_the_practice_paper(program):
    practice = parse_bank(text("certification/practice/foundation-sample.yml"), program,
                          source="p")
    key = parse_answer_key(text("certification/practice/foundation-sample-key.yml"), practice,
                           source="k")
    assert set(key.explanations) == set(key.answers)
    real = parse_bank(text("certification/questions/foundation.yml"), program, source="q")
    assert not {q.id for q in practice.questions} & {q.id for q in real.questions}


# -- rubrics and reviewer grading ----------------------------------------------------
@pytest.mark.parametrize("level", ["practitioner", "architect", "specialist"])
def test_rubrics_have_weights_and_three_concrete_assignments(program, level):
    rubric = parse_rubric(text(f"certification/rubrics/{level}.yml"), program, source=level)
    assert len(rubric.assignments) >= 3
    assert all(a.deliverables for a in rubric.assignments)
    assert rubric.total_weight == 100


def test_grade_command_parsing(program):
    rubric = parse_rubric(text("certification/rubrics/practitioner.yml"), program, source="r")
    scores = parse_grade("spec=80 acceptance=70 tests=90 config=60 communication=100", rubric)
    assert rubric.weighted(scores) == pytest.approx(80.5)
    with pytest.raises(InputError) as info:
        parse_grade("spec=80 tests=120 speed=3", rubric)
    message = str(info.value)
    assert "tests=120: scores go from 0 to 100" in message
    assert "unknown criterion 'speed'" in message
    assert "/grade spec=<0-100>" in message


def grade(reviewer: str, weighted: float) -> ReviewerGrade:
    return ReviewerGrade(reviewer, {}, weighted)


def test_reviewers_must_agree_within_the_spread():
    waiting = consensus([grade("r1", 80)], required=2, spread=10)
    assert waiting.status == "waiting"
    disagree = consensus([grade("r1", 60), grade("r2", 85)], required=2, spread=10)
    assert (disagree.status, disagree.score) == ("disagree", None)
    third = consensus([grade("r1", 60), grade("r2", 85), grade("r3", 80)], required=2, spread=10)
    assert (third.status, third.score, third.agreeing) == ("agreed", 83, ("r3", "r2"))


def test_consensus_does_not_depend_on_posting_order():
    grades = [grade("a", 70), grade("b", 78), grade("c", 88), grade("d", 95)]
    results = {consensus(order, required=2, spread=8).score
               for order in (grades, grades[::-1], grades[1:] + grades[:1])}
    assert results == {92}  # 88 and 95 are the tightest pair within 8 points


# -- records, cool-down, gate, revocation --------------------------------------------
def attempt(level: str, n: int, status: str, graded: datetime | None = None, login="alice"):
    out = {"login": login, "level": level, "attempt": n, "status": status,
           "requested_at": "2026-01-01T00:00:00Z", "request": 1}
    if graded:
        out["graded_at"] = graded.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def cert_entry(login: str, level: str, *, cid: str = "urn:uuid:1", issued=NOW - timedelta(days=1),
               until=None):
    return {"id": cid, "login": login, "level": level, "attempt": 1, "score": 90,
            "issued": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "valid_until": until.strftime("%Y-%m-%dT%H:%M:%SZ") if until else None,
            "file": "x.json", "evidence": "https://example.test/pr/1"}


def test_request_checks_prerequisites_open_attempts_and_cooldown(program):
    week = timedelta(days=7)
    empty = parse_registry(None)
    locked = check_request(program, empty, "alice", "architect", NOW, cooldown=week,
                           max_attempts=None)
    assert not locked.allowed and "architect needs practitioner first" in locked.reason
    assert check_request(program, empty, "alice", "foundation", NOW, cooldown=week,
                         max_attempts=None).attempt == 1
    failed = parse_registry(with_attempt(None, attempt("foundation", 1, "failed",
                                                       NOW - timedelta(days=2))))
    wait = check_request(program, failed, "alice", "foundation", NOW, cooldown=week,
                         max_attempts=None)
    assert not wait.allowed
    assert "a retake of foundation is possible from 2026-03-06T12:00:00Z" in wait.reason
    later = check_request(program, failed, "alice", "foundation", NOW + timedelta(days=6),
                          cooldown=week, max_attempts=None)
    assert (later.allowed, later.attempt) == (True, 2)
    capped = check_request(program, failed, "alice", "foundation", NOW + timedelta(days=9),
                           cooldown=week, max_attempts=1)
    assert "used all 1 attempts" in capped.reason
    open_ = parse_registry(with_attempt(None, attempt("foundation", 1, "open")))
    assert "attempt 1 is still open" in check_request(
        program, open_, "alice", "foundation", NOW, cooldown=week, max_attempts=None).reason


def test_holds_level_counts_higher_levels_and_ignores_revoked_and_expired(program):
    text_ = with_certificate(None, cert_entry("alice", "architect"))
    registry = parse_registry(text_)
    for level, held in (("foundation", True), ("practitioner", True), ("architect", True),
                        ("specialist", False), ("no-such-level", False), (None, True)):
        assert holds_level("Alice", level, program=program, registry=registry, now=NOW) is held
    assert not holds_level("bob", "foundation", program=program, registry=registry, now=NOW)
    revoked = parse_registry(text_, add_revocation(None, "urn:uuid:1", "cheating", NOW))
    assert not holds_level("alice", "foundation", program=program, registry=revoked, now=NOW)
    expired = parse_registry(with_certificate(None, cert_entry(
        "alice", "architect", until=NOW - timedelta(seconds=1))))
    assert not holds_level("alice", "architect", program=program, registry=expired, now=NOW)


def test_level_gate_applies_the_configured_levels(program):
    config = parse_config("certification:\n  gates:\n    rfc_votes: {breaking_change: architect,"
                          " default: foundation}\n    routing_approvals: {R3: specialist, "
                          "R2: practitioner}\n")
    registry = parse_registry(with_certificate(None, cert_entry("alice", "architect")))
    gate = LevelGate(program, registry, config.section("certification"), NOW)
    assert gate.may_vote("alice", "breaking_change") and gate.may_vote("alice", "standard")
    assert not gate.may_vote("bob", "standard")
    assert gate.may_approve("alice", "R2") and not gate.may_approve("alice", "R3")
    assert gate.may_approve("bob", "R1")  # no level configured for R1
    assert "does not hold the specialist certification" in gate.why_not("alice", "specialist")


def test_revocation_list_is_idempotent():
    once = add_revocation(None, "urn:uuid:9", "issued in error", NOW)
    assert add_revocation(once, "urn:uuid:9", "again", NOW) == once
    assert parse_registry(None, once).revoked["urn:uuid:9"].reason == "issued in error"


def test_broken_registry_is_a_clear_error():
    with pytest.raises(InputError, match="certification/registry.json:1: invalid JSON"):
        parse_registry("{nope")


def test_result_rows_never_single_out_one_question(program, bank):
    from bot.certification.grading import report_rows

    level = program.level("foundation")
    key = key_for(bank)
    for per_module in (4, 9):
        paper = draw_exam(bank, level, "alice", 1, per_module)
        result = grade_multiple_choice(paper, answers_for(paper, key, wrong=1), key, level)
        rows = report_rows(result, level)
        assert all(row.total >= 3 for row in rows)
        assert sum(row.total for row in rows) == result.total
        assert sum(row.correct for row in rows) == result.correct
        covered = [o for row in rows for o in row.objectives]
        assert sorted(covered) == sorted(o.objective for o in result.objectives)


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 100)), max_size=8,
                unique_by=lambda g: g[0]),
       st.integers(1, 4), st.integers(0, 30), st.randoms())
def test_consensus_is_independent_of_order(raw, required, spread, rnd):
    grades = [grade(name, float(score)) for name, score in raw]
    shuffled = list(grades)
    rnd.shuffle(shuffled)
    a = consensus(grades, required=required, spread=spread)
    b = consensus(shuffled, required=required, spread=spread)
    assert (a.status, a.score, sorted(a.agreeing)) == (b.status, b.score, sorted(b.agreeing))
    if a.status == "agreed":
        scores = [g.weighted for g in grades if g.reviewer in a.agreeing]
        assert len(scores) >= required and max(scores) - min(scores) <= spread


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=39),
       st.integers(1, 5), st.integers(1, 12))
def test_any_draw_is_a_valid_paper(program, bank, login, attempt, per_module):
    level = program.level("foundation")
    paper = draw_exam(bank, level, login, attempt, per_module)
    ids = [i.question_id for i in paper.items]
    assert len(ids) == len(set(ids))
    for module in level.modules:
        available = len(bank.by_module(module.id))
        assert sum(1 for i in paper.items if i.module == module.id) == min(per_module, available)
    for item in paper.items:
        assert sorted(c.option for c in item.choices) == sorted(
            o for o, _ in bank.get(item.question_id).options)  # type: ignore[union-attr]
    assert draw_exam(bank, level, login, attempt, per_module) == paper
