"""Item statistics: how each question behaved on the papers candidates actually sat.

Classical test theory, kept to what a question author can act on:

- **difficulty** is the share of candidates who answered the question correctly
  (1.0: everybody, 0.0: nobody). A question everybody gets right measures nothing; one
  nobody gets right is usually wrong, or its key is.
- **discrimination** is the share correct among candidates who passed the exam minus
  the share among those who failed. A good question is answered better by people who
  know the material (positive); near zero it does not separate them, and below zero
  the stronger candidates are being misled (often an ambiguous stem or a bad key).

Pure: graded answers in, statistics out; ``cvf cert stats`` gathers the answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.certification.bank import AnswerKey, QuestionBank
from bot.certification.exam import ExamPaper
from bot.certification.grading import check_answers, grade_multiple_choice
from bot.certification.program import Level

LOW_DISCRIMINATION = 0.1


@dataclass(frozen=True)
class Attempt:
    """One graded paper: which of its questions were answered correctly, and the verdict."""

    login: str
    attempt: int
    correct: dict[str, bool]
    passed: bool
    score: int


@dataclass(frozen=True)
class ItemStat:
    question: str
    objective: str
    answered: int
    correct: int
    passing_answered: int
    passing_correct: int
    failing_answered: int
    failing_correct: int

    @property
    def difficulty(self) -> float | None:
        return self.correct / self.answered if self.answered else None

    @property
    def discrimination(self) -> float | None:
        if not self.passing_answered or not self.failing_answered:
            return None
        return (self.passing_correct / self.passing_answered
                - self.failing_correct / self.failing_answered)

    @property
    def flags(self) -> tuple[str, ...]:
        out = []
        if self.answered and self.correct == 0:
            out.append("nobody gets it right: check the key and the wording")
        if self.answered and self.correct == self.answered:
            out.append("everybody gets it right: it measures nothing")
        disc = self.discrimination
        if disc is not None and disc < 0:
            out.append("failing candidates do better than passing ones: ambiguous or mis-keyed")
        elif disc is not None and disc < LOW_DISCRIMINATION and not out:
            out.append("does not separate passing from failing candidates")
        return tuple(out)


def graded_attempt(paper: ExamPaper, answers: dict[str, str], key: AnswerKey,
                   level: Level) -> Attempt:
    """Grade ``answers`` to ``paper`` exactly as the bot does and keep each item's result."""
    result = grade_multiple_choice(paper, answers, key, level)
    mapped = check_answers(paper, answers)
    correct = {qid: option == key.answers[qid] for qid, option in mapped.items()}
    return Attempt(paper.login, paper.attempt, correct, result.passed, result.score)


def item_statistics(bank: QuestionBank, attempts: list[Attempt]) -> list[ItemStat]:
    """One row per question of the bank, in bank order (unanswered questions included)."""
    rows = []
    for question in bank.questions:
        mine = [a for a in attempts if question.id in a.correct]
        passing = [a for a in mine if a.passed]
        failing = [a for a in mine if not a.passed]
        rows.append(ItemStat(
            question=question.id, objective=question.objective, answered=len(mine),
            correct=sum(a.correct[question.id] for a in mine),
            passing_answered=len(passing),
            passing_correct=sum(a.correct[question.id] for a in passing),
            failing_answered=len(failing),
            failing_correct=sum(a.correct[question.id] for a in failing)))
    return rows
