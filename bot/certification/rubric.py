"""Rubrics and reviewer grading (`/grade criterion=score ...`).

A result stands once ``required`` reviewers' weighted scores fall within ``spread``
points of each other; the result is their mean. Reviewers who disagree are not
averaged away: the bot says so and asks for another reviewer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.certification.documents import DocumentError, load_document
from bot.certification.program import Program
from bot.config import located_problem
from bot.errors import InputError
from bot.markdown import command_lines


@dataclass(frozen=True)
class Criterion:
    id: str
    weight: int
    description: str
    objectives: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    brief: str
    deliverables: tuple[str, ...]
    scenario: str | None = None
    starting_state: str = ""
    checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rubric:
    level: str
    criteria: tuple[Criterion, ...]
    assignments: tuple[Assignment, ...]

    @property
    def total_weight(self) -> int:
        return sum(c.weight for c in self.criteria)

    def assignment(self, assignment_id: str) -> Assignment | None:
        return next((a for a in self.assignments if a.id == assignment_id), None)

    def weighted(self, scores: dict[str, float]) -> float:
        return sum(c.weight * scores[c.id] for c in self.criteria) / self.total_weight


def parse_rubric(text: str, program: Program, *, source: str) -> Rubric:
    located = load_document(text, kind="rubric", source=source)
    data = located.data
    problems: list[str] = []
    if not program.has_level(data["level"]):
        raise DocumentError(located_problem(source, located, ("level",),
                                            f"unknown level '{data['level']}'"))
    known = {o.id for o in program.level(data["level"]).objectives}
    criteria = []
    for i, raw in enumerate(data["criteria"]):
        for j, obj in enumerate(raw.get("objectives", [])):
            if obj not in known:
                problems.append(located_problem(source, located, ("criteria", i, "objectives", j),
                                                f"objective '{obj}' is not in level "
                                                f"{data['level']}"))
        criteria.append(Criterion(raw["id"], raw["weight"], raw["description"],
                                  tuple(raw.get("objectives", []))))
    ids = [c.id for c in criteria]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(located_problem(source, located, ("criteria",),
                                        f"criterion '{dup}' is defined twice"))
    assignments = tuple(Assignment(a["id"], a["title"], a["brief"], tuple(a["deliverables"]),
                                   a.get("scenario"), str(a.get("starting_state", "")).strip(),
                                   tuple(a.get("checks", []))) for a in data["assignments"])
    if problems:
        raise DocumentError(problems[0], problems=problems)
    return Rubric(level=data["level"], criteria=tuple(criteria), assignments=assignments)


_GRADE_LINE = re.compile(r"^\s*/grade\b(.*)$", re.IGNORECASE | re.MULTILINE)
_PAIR = re.compile(r"^([a-z][a-z0-9_]*)=([0-9]+(?:\.[0-9]+)?)$")


def find_grade_commands(body: str) -> list[str]:
    """The argument text of each `/grade` line outside code fences and quotes."""
    out = []
    for _, line in command_lines(body):
        match = _GRADE_LINE.match(line)
        if match:
            out.append(match.group(1).strip())
    return out


def parse_grade(args: str, rubric: Rubric) -> dict[str, float]:
    """``design=80 tests=70.5`` -> scores; every criterion exactly once, each 0..100."""
    problems = []
    scores: dict[str, float] = {}
    known = [c.id for c in rubric.criteria]
    for token in args.split():
        match = _PAIR.match(token.lower())
        if not match:
            problems.append(f"'{token}' is not criterion=score (e.g. {known[0]}=80)")
            continue
        name, value = match.group(1), float(match.group(2))
        if name not in known:
            problems.append(f"unknown criterion '{name}'; the criteria are {', '.join(known)}")
        elif name in scores:
            problems.append(f"criterion '{name}' is scored twice")
        elif value > 100:
            problems.append(f"{name}={match.group(2)}: scores go from 0 to 100")
        else:
            scores[name] = value
    missing = [c for c in known if c not in scores]
    if missing and not problems:
        problems.append(f"missing scores for {', '.join(missing)}: score every criterion")
    if problems:
        raise InputError("; ".join(problems),
                         hint="write `/grade " + " ".join(f"{c}=<0-100>" for c in known) + "`")
    return scores


@dataclass(frozen=True)
class ReviewerGrade:
    reviewer: str
    scores: dict[str, float]
    weighted: float


@dataclass(frozen=True)
class Consensus:
    status: str  # "agreed" | "waiting" | "disagree"
    score: int | None
    agreeing: tuple[str, ...]
    grades: tuple[ReviewerGrade, ...]
    needed: int
    spread: float


def consensus(grades: list[ReviewerGrade], *, required: int, spread: float) -> Consensus:
    """Largest group of reviewers within ``spread`` of each other; agreed once it has ``required``.

    Among equally large groups the tightest wins, then the lower scores (the cautious
    reading), so the outcome does not depend on the order reviewers posted in.
    """
    ordered = sorted(grades, key=lambda g: (g.weighted, g.reviewer))
    best: list[ReviewerGrade] = []
    for start in range(len(ordered)):
        group = [g for g in ordered[start:] if g.weighted - ordered[start].weighted <= spread]
        if len(group) > len(best) or (
                len(group) == len(best) and best
                and group[-1].weighted - group[0].weighted < best[-1].weighted - best[0].weighted):
            best = group
    if len(best) >= required:
        mean = sum(g.weighted for g in best) / len(best)
        return Consensus("agreed", int(mean + 0.5), tuple(g.reviewer for g in best),
                         tuple(grades), required, spread)
    status = "disagree" if len(grades) >= required else "waiting"
    return Consensus(status, None, (), tuple(grades), required, spread)
