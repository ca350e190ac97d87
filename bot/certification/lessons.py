"""Lessons: one markdown file per module that teaches each of its objectives.

A lesson opens with front matter naming its level, module and the minutes it takes
(reading, worked examples and exercises), then one ``## <objective id> …`` section per
objective. An objective counts as *taught* when its section explains it in prose and
shows it on the real tool (at least one code block: a command, its output, a bot reply
or a config excerpt). The minutes of a level's lessons add up to the level's hours, so
the catalog's hours are the lessons' hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from bot.certification.program import Level

MIN_WORDS = 80  # words of prose (outside code) a section needs to count as teaching it
_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
_HEADING = re.compile(r"^## +([A-Z][0-9]+\.[0-9]+)\b.*$", re.MULTILINE)
_ANY_H2 = re.compile(r"^## ", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Lesson:
    path: str
    level: str
    module: str
    minutes: int
    title: str
    words: dict[str, int] = field(default_factory=dict)  # objective -> prose words
    examples: dict[str, int] = field(default_factory=dict)  # objective -> code blocks
    exercises: bool = False


def lesson_path(lessons_dir: str, level: str, module: str) -> str:
    return f"{lessons_dir.rstrip('/')}/{level}/{module}.md"


def parse_lesson(text: str, *, source: str) -> Lesson | str:
    """The lesson, or what is wrong with its front matter (in words)."""
    match = _FRONT.match(text)
    if not match:
        return f"{source}:1: a lesson starts with front matter (---, level, module, minutes, ---)"
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        return f"{source}:1: the front matter is not YAML: {exc}"
    if not isinstance(meta, dict) or not all(k in meta for k in ("level", "module", "minutes")):
        return f"{source}:1: the front matter needs level, module and minutes"
    if not isinstance(meta["minutes"], int) or meta["minutes"] < 1:
        return f"{source}:1: minutes must be a whole number above 0"
    body = text[match.end():]
    # Headings are looked for outside code blocks (an example may show a markdown "## ").
    plain = _FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), body)
    title = next((line[2:].strip() for line in plain.splitlines() if line.startswith("# ")), "")
    starts = [(m.start(), m.group(1)) for m in _HEADING.finditer(plain)]
    ends = [m.start() for m in _ANY_H2.finditer(plain)] + [len(body)]
    words: dict[str, int] = {}
    examples: dict[str, int] = {}
    for start, objective in starts:
        end = next(e for e in ends if e > start)
        section = body[start:end]
        prose = _FENCE.sub(" ", section)
        words[objective] = words.get(objective, 0) + len(re.findall(r"[A-Za-z]{2,}", prose))
        examples[objective] = examples.get(objective, 0) + len(_FENCE.findall(section))
    exercises = bool(re.search(r"^## +Exercises\b", plain, re.MULTILINE))
    return Lesson(source, str(meta["level"]), str(meta["module"]), int(meta["minutes"]), title,
                  words, examples, exercises)


def lesson_problems(lessons: dict[str, Lesson | str | None], level: Level) -> list[str]:
    """What keeps ``level``'s lessons from teaching every objective in its hours.

    ``lessons`` maps module id -> the parsed lesson, a front-matter problem, or None
    when the file is missing (keyed by module so the caller decides where files live).
    """
    out: list[str] = []
    minutes = 0
    for module in level.modules:
        lesson = lessons.get(module.id)
        if lesson is None:
            out.append(f"{level.id}: module {module.id} has no lesson, so "
                       f"{', '.join(o.id for o in module.objectives)} are taught nowhere")
            continue
        if isinstance(lesson, str):
            out.append(lesson)
            continue
        minutes += lesson.minutes
        if (lesson.level, lesson.module) != (level.id, module.id):
            out.append(f"{lesson.path}:1: front matter says {lesson.level}/{lesson.module}, "
                       f"the file is for {level.id}/{module.id}")
        for objective in module.objectives:
            words = lesson.words.get(objective.id, 0)
            if words < MIN_WORDS or not lesson.examples.get(objective.id):
                why = ("it has no `## " + objective.id + "` section" if objective.id not in
                       lesson.words else f"its section has {words} words of prose and "
                       f"{lesson.examples.get(objective.id, 0)} example(s); it needs "
                       f"{MIN_WORDS}+ words and a worked example")
                out.append(f"{lesson.path}: objective {objective.id} ({objective.text}) is "
                           f"not taught: {why}")
        if not lesson.exercises:
            out.append(f"{lesson.path}: no `## Exercises` section")
    expected = level.hours * 60
    if minutes and minutes != expected and len(out) == 0:
        out.append(f"{level.id}: the lessons take {minutes} minutes but the level promises "
                   f"{level.hours} hours ({expected} minutes); size the lessons' `minutes` to it")
    return out
