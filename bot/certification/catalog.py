"""What the catalog promises about each objective: a lesson teaches it, an exam examines it.

An objective nobody is taught or examined on is a promise the certificate cannot back,
so ``cvf cert catalog`` and ``cvf cert lint`` both refuse a program with one.
"""

from __future__ import annotations

from bot.certification.lessons import Lesson, lesson_path, lesson_problems, parse_lesson
from bot.certification.lint import coverage_problems
from bot.certification.materials import Materials
from bot.certification.program import Level
from bot.errors import CvfError


def examined_by(materials: Materials, level: Level) -> dict[str, list[str]]:
    """objective id -> what examines it (question ids, or ``criterion <id>``)."""
    out: dict[str, list[str]] = {o.id: [] for o in level.objectives}
    if level.exam_format == "multiple_choice":
        for question in materials.bank(level.id).questions:
            out[question.objective].append(question.id)
    else:
        for criterion in materials.rubric(level.id).criteria:
            for objective in criterion.objectives:
                out[objective].append(f"criterion {criterion.id}")
    return out


def coverage_gaps(materials: Materials, level: Level) -> list[str]:
    """Every objective of ``level`` that no question or rubric criterion examines."""
    if level.exam_format == "multiple_choice":
        return [str(f) for f in coverage_problems(materials.bank(level.id), level)]
    source = f"{materials.section['rubrics_dir'].rstrip('/')}/{level.id}.yml"
    out = [f"{source}: objective {objective} ({text}) is examined by no rubric criterion; "
           f"list it under a criterion's `objectives`"
           for objective, text, found in (
               (o.id, o.text, examined_by(materials, level)[o.id]) for o in level.objectives)
           if not found]
    return out + assignment_problems(materials, level, source)


def assignment_problems(materials: Materials, level: Level, source: str) -> list[str]:
    """An assignment must be concrete: a scenario that loads, or a starting state and
    what a reviewer checks, so two reviewers grade the same work the same way."""
    out = []
    for assignment in materials.rubric(level.id).assignments:
        if assignment.scenario:
            try:
                materials.scenario(assignment.scenario)
            except CvfError as exc:
                out.append(f"{source}: assignment {assignment.id}: scenario "
                           f"'{assignment.scenario}' does not load: {exc.message}")
            continue
        if not assignment.starting_state:
            out.append(f"{source}: assignment {assignment.id} has no `starting_state` (the "
                       f"repository or data the candidate starts from)")
        if len(assignment.checks) < 2:
            out.append(f"{source}: assignment {assignment.id} lists {len(assignment.checks)} "
                       f"`checks`; say at least two things a reviewer checks")
    return out


def lessons_of(materials: Materials, level: Level) -> dict[str, Lesson | str | None]:
    """module id -> its parsed lesson, a front-matter problem, or None when missing."""
    out: dict[str, Lesson | str | None] = {}
    for module in level.modules:
        path = lesson_path(materials.section["lessons_dir"], level.id, module.id)
        text = materials.read(path)
        out[module.id] = None if text is None else parse_lesson(text, source=path)
    return out


def program_gaps(materials: Materials) -> list[str]:
    """Every objective of every level that is not both taught and examined."""
    out: list[str] = []
    for level in materials.program.levels:
        out.extend(coverage_gaps(materials, level))
        out.extend(lesson_problems(lessons_of(materials, level), level))
    return out
