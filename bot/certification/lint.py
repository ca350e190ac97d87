"""Exam quality: rules a question bank must keep so a paper cannot be passed by its shape.

A candidate who has never read a lesson should not score well by always picking the
longest option, or the option in one position, or by striking out options nobody would
pick. These checks read the bank, and (for the rules about the correct option) its
answer key, and return one problem per broken rule naming the questions behind it, so an
author knows which questions to rewrite.

Pure: bank, key and program in, problems out; ``cvf cert lint`` does the reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.certification.bank import AnswerKey, Question, QuestionBank
from bot.certification.program import Level

LONGEST_MAX = 0.35  # share of questions whose correct option may be the longest
POSITION_TOLERANCE = 0.10  # how far a position's share of correct options may be from uniform
MIN_PER_MODULE = 6

# Options that carry no content of their own: a candidate learns nothing by choosing them
# and an author uses them to fill a slot. "all/none of the above" is allowed only where the
# question says it is intended (``catch_all: true``).
_PLACEHOLDER = re.compile(r"^\W*(n/?a|tbd|todo|\?+|-+|x|\.\.\.)\W*$", re.IGNORECASE)
_CATCH_ALL = re.compile(r"\b(all|none|both|neither) of (the )?(above|these|those)\b|"
                        r"\bboth [a-f] and [a-f]\b", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One broken rule; ``questions`` are the ids to rewrite (empty for a bank-wide gap)."""

    rule: str
    message: str
    questions: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[`*_\"'.,;:!]", "", text).lower().split())


def option_problems(question: Question) -> list[Finding]:
    """Duplicate options and options no candidate would take seriously."""
    out: list[Finding] = []
    seen: dict[str, str] = {}
    for option_id, text in question.options:
        norm = _norm(text)
        if norm in seen:
            out.append(Finding("duplicate_option",
                               f"{question.id}: options {seen[norm]} and {option_id} say the "
                               f"same thing ({text.strip()!r}); write a distinct distractor",
                               (question.id,)))
        else:
            seen[norm] = option_id
        if not text.strip() or _PLACEHOLDER.match(text):
            out.append(Finding("implausible_option",
                               f"{question.id}: option {option_id} ({text.strip()!r}) is a "
                               f"placeholder, not a plausible answer; write a wrong answer a "
                               f"candidate who skipped the lesson might believe",
                               (question.id,)))
        elif _CATCH_ALL.search(text) and not question.catch_all:
            out.append(Finding("implausible_option",
                               f"{question.id}: option {option_id} ({text.strip()!r}) is a "
                               f"catch-all; replace it, or mark the question `catch_all: true` "
                               f"if it is intended", (question.id,)))
    return out


def correct_is_longest(question: Question, correct: str) -> bool:
    """True when the correct option is at least as long as every other (ties count:
    a candidate picking "the longest" among equals can still land on it)."""
    lengths = {o: len(t.strip()) for o, t in question.options}
    return lengths[correct] >= max(v for o, v in lengths.items() if o != correct)


def position_of(question: Question, option_id: str) -> int:
    return [o for o, _ in question.options].index(option_id)


def longest_bias(bank: QuestionBank, key: AnswerKey,
                 limit: float = LONGEST_MAX) -> Finding | None:
    longest = [q.id for q in bank.questions if correct_is_longest(q, key.answers[q.id])]
    share = len(longest) / len(bank.questions) if bank.questions else 0.0
    if share <= limit:
        return None
    allowed = int(limit * len(bank.questions))
    return Finding("longest_bias",
                   f"{bank.level}: the correct option is the longest in {len(longest)} of "
                   f"{len(bank.questions)} questions ({share:.0%}; at most {limit:.0%}, i.e. "
                   f"{allowed}): shorten the answer or lengthen a distractor in some of "
                   f"{', '.join(longest)}", tuple(longest))


def position_shares(bank: QuestionBank, key: AnswerKey) -> list[tuple[int, float, float]]:
    """(position, share of questions whose correct option sits there, share expected if
    positions were uniform); questions with fewer options expect nothing at high positions."""
    total = len(bank.questions)
    width = max((len(q.options) for q in bank.questions), default=0)
    rows = []
    for pos in range(width):
        actual = sum(1 for q in bank.questions if position_of(q, key.answers[q.id]) == pos)
        expected = sum(1 / len(q.options) for q in bank.questions if pos < len(q.options))
        rows.append((pos, actual / total, expected / total))
    return rows


def position_bias(bank: QuestionBank, key: AnswerKey,
                  tolerance: float = POSITION_TOLERANCE) -> list[Finding]:
    out = []
    for pos, actual, expected in position_shares(bank, key):
        if abs(actual - expected) <= tolerance + 1e-9:
            continue
        letter = "abcdef"[pos]
        there = [q.id for q in bank.questions if position_of(q, key.answers[q.id]) == pos]
        if actual > expected:
            fix = f"move the answer elsewhere in some of {', '.join(there)}"
        else:
            fix = "move the answer to this position in some other questions"
        out.append(Finding("position_bias",
                           f"{bank.level}: the correct option is option {letter} in "
                           f"{actual:.0%} of questions; uniform is {expected:.0%} "
                           f"(within {tolerance:.0%}): {fix}",
                           tuple(there) if actual > expected else ()))
    return out


def coverage_problems(bank: QuestionBank, level: Level,
                      minimum: int = MIN_PER_MODULE) -> list[Finding]:
    """Each module has ``minimum`` questions and each of its objectives has one."""
    out = []
    for module in level.modules:
        mine = bank.by_module(module.id)
        if len(mine) < minimum:
            out.append(Finding("module_size",
                               f"{level.id}: module {module.id} has {len(mine)} question(s); "
                               f"it needs at least {minimum}"))
        tested = {q.objective for q in mine}
        for objective in module.objectives:
            if objective.id not in tested:
                out.append(Finding("untested_objective",
                                   f"{level.id}: objective {objective.id} ({objective.text}) "
                                   f"has no question; add one tagged `objective: "
                                   f"{objective.id}`"))
    return out


def lint_bank(bank: QuestionBank, level: Level, key: AnswerKey | None, *,
              minimum: int = MIN_PER_MODULE) -> list[Finding]:
    """Every rule; the ones about the correct option only when the key is given."""
    out: list[Finding] = []
    for question in bank.questions:
        out.extend(option_problems(question))
    out.extend(coverage_problems(bank, level, minimum))
    if key is not None:
        found = longest_bias(bank, key)
        if found:
            out.append(found)
        out.extend(position_bias(bank, key))
    return out
