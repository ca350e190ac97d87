"""Drawing a candidate's exam from the bank.

The draw is seeded by (login, level, attempt): the same candidate sees the same paper
every time it is rendered or graded, two candidates see different papers, and a retake
is a new paper. Options are shuffled too, so a letter means nothing across papers; the
grader redraws the paper to map the candidate's letters back to option ids.
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass

from bot.certification.bank import QuestionBank
from bot.certification.program import Level


@dataclass(frozen=True)
class Choice:
    letter: str
    option: str  # option id in the bank
    text: str


@dataclass(frozen=True)
class ExamItem:
    number: int
    question_id: str
    objective: str
    module: str
    text: str
    choices: tuple[Choice, ...]

    def option_for(self, letter: str) -> str | None:
        wanted = letter.strip().upper()
        return next((c.option for c in self.choices if c.letter == wanted), None)


@dataclass(frozen=True)
class ExamPaper:
    login: str
    level: str
    attempt: int
    seed: str
    items: tuple[ExamItem, ...]

    def item(self, question_id: str) -> ExamItem | None:
        return next((i for i in self.items if i.question_id == question_id), None)


def exam_seed(login: str, level: str, attempt: int) -> str:
    return hashlib.sha256(f"cvf-exam|{login.lower()}|{level}|{attempt}".encode()).hexdigest()


def draw_exam(bank: QuestionBank, level: Level, login: str, attempt: int,
              per_module: int) -> ExamPaper:
    """``per_module`` questions from each module (all of them when the module has fewer)."""
    seed = exam_seed(login, level.id, attempt)
    rng = random.Random(int(seed[:16], 16))
    chosen = []
    for module in level.modules:
        pool = bank.by_module(module.id)
        chosen.extend(rng.sample(pool, min(per_module, len(pool))))
    rng.shuffle(chosen)
    items = []
    for number, question in enumerate(chosen, start=1):
        options = list(question.options)
        rng.shuffle(options)
        choices = tuple(Choice(string.ascii_uppercase[i], option_id, text)
                        for i, (option_id, text) in enumerate(options))
        items.append(ExamItem(number, question.id, question.objective, question.module,
                              question.text, choices))
    return ExamPaper(login=login, level=level.id, attempt=attempt, seed=seed, items=tuple(items))
