"""Grading a multiple-choice submission against the paper the candidate was given.

The result carries a score per objective and overall, never which answer was right:
what a candidate sees cannot be used to rebuild the key.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.certification.bank import AnswerKey
from bot.certification.exam import ExamPaper
from bot.certification.program import Level
from bot.errors import CvfError, InputError


class SubmissionError(InputError):
    """A submission that cannot be graded as it is; lists every problem and how to fix it."""

    def __init__(self, message: str, *, problems: list[str] | None = None,
                 hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or [message]


@dataclass(frozen=True)
class ObjectiveScore:
    objective: str
    correct: int
    total: int

    @property
    def percent(self) -> int:
        return percent(self.correct, self.total)


@dataclass(frozen=True)
class McResult:
    score: int
    correct: int
    total: int
    passed: bool
    pass_score: int
    objectives: tuple[ObjectiveScore, ...]


MIN_QUESTIONS_PER_ROW = 3


@dataclass(frozen=True)
class ReportRow:
    """One line of the result a candidate sees: an objective, or a module's objectives
    pooled when each had too few questions on the paper to be scored alone."""

    label: str
    objectives: tuple[str, ...]
    correct: int
    total: int


def report_rows(result: McResult, level: Level,
                minimum: int = MIN_QUESTIONS_PER_ROW) -> list[ReportRow]:
    """Scores per objective, without telling which question was wrong.

    An objective with fewer than ``minimum`` questions on the paper is pooled with the
    other small objectives of its module (and a pool still too small joins the module's
    first row), so a row of "0/1" can never point at the one wrong question.
    """
    scored = {o.objective: o for o in result.objectives}
    rows: list[ReportRow] = []
    for module in level.modules:
        mine = [scored[o.id] for o in module.objectives if o.id in scored]
        alone = [o for o in mine if o.total >= minimum]
        pooled = [o for o in mine if o.total < minimum]
        module_rows = [ReportRow(o.objective, (o.objective,), o.correct, o.total) for o in alone]
        if pooled:
            pool = ReportRow(module.title, tuple(o.objective for o in pooled),
                             sum(o.correct for o in pooled), sum(o.total for o in pooled))
            if pool.total < minimum and module_rows:
                first = module_rows[0]
                pool = ReportRow(module.title, first.objectives + pool.objectives,
                                 first.correct + pool.correct, first.total + pool.total)
                module_rows = module_rows[1:]
            module_rows.append(pool)
        rows.extend(module_rows)
    return rows


def percent(part: float, whole: float) -> int:
    """Whole percent, halves rounded up (so 0.5 never rounds to even by surprise)."""
    if whole <= 0:
        return 0
    return int(part * 100 / whole + 0.5)


def check_answers(paper: ExamPaper, answers: dict[str, str]) -> dict[str, str]:
    """Map the candidate's letters to option ids, or raise with every problem found."""
    problems = []
    for qid in answers:
        if paper.item(qid) is None:
            problems.append(f"answers.{qid}: no question '{qid}' on your paper "
                            f"(attempt {paper.attempt}); answer only the questions it lists")
    mapped: dict[str, str] = {}
    missing = []
    for item in paper.items:
        letter = answers.get(item.question_id)
        if letter is None or not str(letter).strip():
            missing.append(item.question_id)
            continue
        option = item.option_for(str(letter))
        if option is None:
            letters = ", ".join(c.letter for c in item.choices)
            problems.append(f"answers.{item.question_id}: '{letter}' is not a choice "
                            f"(choose one of {letters})")
        else:
            mapped[item.question_id] = option
    if missing:
        problems.append(f"missing answers for {', '.join(missing)}: every question needs one "
                        f"letter")
    if problems:
        raise SubmissionError(problems[0], problems=problems)
    return mapped


def grade_multiple_choice(paper: ExamPaper, answers: dict[str, str], key: AnswerKey,
                          level: Level) -> McResult:
    if key.level != level.id:
        raise CvfError(f"the answer key is for '{key.level}', not '{level.id}'",
                       hint="configure the key for this level's bank")
    unkeyed = [i.question_id for i in paper.items if i.question_id not in key.answers]
    if unkeyed:
        raise CvfError(f"the answer key has no answer for {', '.join(unkeyed)}",
                       hint="update the answer-key secret to match the question bank")
    mapped = check_answers(paper, answers)
    per: dict[str, list[int]] = {}
    for item in paper.items:
        tally = per.setdefault(item.objective, [0, 0])
        tally[1] += 1
        if mapped[item.question_id] == key.answers[item.question_id]:
            tally[0] += 1
    correct = sum(c for c, _ in per.values())
    total = sum(t for _, t in per.values())
    score = percent(correct, total)
    objectives = tuple(ObjectiveScore(obj, c, t) for obj, (c, t) in sorted(per.items()))
    return McResult(score=score, correct=correct, total=total, passed=score >= level.pass_score,
                    pass_score=level.pass_score, objectives=objectives)
