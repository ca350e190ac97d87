"""Question banks and answer keys.

The bank is public (it ships in the repository); the answer key is not: it is parsed
from a secret or a private file by the host and handed to the grader as plain data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bot.certification.documents import DocumentError, load_document
from bot.certification.program import Program
from bot.config import located_problem
from bot.errors import CvfError


@dataclass(frozen=True)
class Question:
    id: str
    objective: str
    module: str
    text: str
    options: tuple[tuple[str, str], ...]  # (option id, text), in bank order
    catch_all: bool = False  # an "all/none of the above" option is intended


@dataclass(frozen=True)
class QuestionBank:
    level: str
    questions: tuple[Question, ...]

    def by_module(self, module_id: str) -> list[Question]:
        return sorted((q for q in self.questions if q.module == module_id), key=lambda q: q.id)

    def get(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)


@dataclass(frozen=True)
class AnswerKey:
    level: str
    answers: dict[str, str]
    explanations: dict[str, str] = field(default_factory=dict)


def parse_bank(text: str, program: Program, *, source: str) -> QuestionBank:
    """The bank, with each question checked against the program's objectives for its level."""
    located = load_document(text, kind="questions", source=source)
    data = located.data
    problems: list[str] = []
    if not program.has_level(data["level"]):
        problems.append(located_problem(source, located, ("level",),
                                        f"unknown level '{data['level']}'; levels: "
                                        f"{', '.join(program.level_ids)}"))
        raise DocumentError(problems[0], problems=problems)
    level = program.level(data["level"])
    objectives = {o.id: o for o in level.objectives}
    questions: list[Question] = []
    seen: set[str] = set()
    for i, raw in enumerate(data["questions"]):
        if raw["id"] in seen:
            problems.append(located_problem(source, located, ("questions", i, "id"),
                                            f"question '{raw['id']}' is defined twice"))
        seen.add(raw["id"])
        objective = objectives.get(raw["objective"])
        if objective is None:
            problems.append(located_problem(
                source, located, ("questions", i, "objective"),
                f"objective '{raw['objective']}' is not one of level {level.id}'s objectives "
                f"({', '.join(objectives)})"))
            continue
        options = tuple((str(k), str(v)) for k, v in raw["options"].items())
        questions.append(Question(raw["id"], objective.id, objective.module, raw["text"], options,
                                  bool(raw.get("catch_all", False))))
    if problems:
        raise DocumentError(problems[0], problems=problems)
    return QuestionBank(level=level.id, questions=tuple(questions))


def parse_answer_key(text: str, bank: QuestionBank, *, source: str) -> AnswerKey:
    """The key must answer every question in the bank with one of that question's options."""
    located = load_document(text, kind="answer_key", source=source)
    data = located.data
    problems: list[str] = []
    if data["level"] != bank.level:
        problems.append(located_problem(source, located, ("level",),
                                        f"this key is for '{data['level']}', the bank is "
                                        f"'{bank.level}'"))
    answers = {str(k): str(v) for k, v in data["answers"].items()}
    for qid, option in answers.items():
        question = bank.get(qid)
        if question is None:
            problems.append(located_problem(source, located, ("answers", qid),
                                            f"no question '{qid}' in the {bank.level} bank"))
        elif option not in dict(question.options):
            problems.append(located_problem(source, located, ("answers", qid),
                                            f"'{option}' is not an option of {qid}"))
    unanswered = [q.id for q in bank.questions if q.id not in answers]
    if unanswered:
        problems.append(located_problem(source, located, ("answers",),
                                        f"no answer for {', '.join(unanswered)}"))
    if problems:
        raise DocumentError(problems[0], problems=problems)
    explanations = {str(k): str(v) for k, v in (data.get("explanations") or {}).items()}
    return AnswerKey(level=bank.level, answers=answers, explanations=explanations)


class AnswerKeyMissing(CvfError):
    """Grading multiple choice without the secret key is refused, never guessed."""


def configured_key_text(section: dict[str, object],
                        environ: dict[str, str] | None = None) -> tuple[str, str] | None:
    """The answer key's text and where it came from: the secret named by
    ``answer_key_env``, else the file at ``answer_key_path``; None when neither is set."""
    env_name = str(section["answer_key_env"])
    text = (os.environ if environ is None else environ).get(env_name)
    if text:
        return text, f"${env_name}"
    path = section.get("answer_key_path")
    if path and Path(str(path)).is_file():
        return Path(str(path)).read_text("utf-8"), str(path)
    return None
