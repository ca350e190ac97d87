"""The program: levels, their modules and objectives, and the prerequisite chain.

Levels are ordered from entry level upwards. Holding a level implies holding every
level it (transitively) requires, which is what "that level or above" means for gates
and reviewer pools.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from bot.certification.documents import DocumentError, load_document
from bot.config import located_problem
from bot.errors import InputError

FORMATS = ("multiple_choice", "practical_project", "case_study", "scenario_simulation")
RUBRIC_FORMATS = ("practical_project", "case_study")


@dataclass(frozen=True)
class Objective:
    id: str
    text: str
    module: str


@dataclass(frozen=True)
class Module:
    id: str
    title: str
    objectives: tuple[Objective, ...]


@dataclass(frozen=True)
class Level:
    id: str
    title: str
    hours: int
    focus: str
    cvf_version: str
    prerequisites: tuple[str, ...]
    exam_format: str
    pass_score: int
    modules: tuple[Module, ...]

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return tuple(o for m in self.modules for o in m.objectives)

    @property
    def exam_label(self) -> str:
        return self.exam_format.replace("_", " ")


@dataclass(frozen=True)
class Program:
    title: str
    levels: tuple[Level, ...]

    @property
    def level_ids(self) -> tuple[str, ...]:
        return tuple(level.id for level in self.levels)

    def level(self, level_id: str) -> Level:
        for level in self.levels:
            if level.id == level_id:
                return level
        raise InputError(f"unknown level '{level_id}'", hint=self._suggest(level_id))

    def has_level(self, level_id: str) -> bool:
        return level_id in self.level_ids

    def implied(self, level_id: str) -> set[str]:
        """``level_id`` and every level it requires, directly or through another level."""
        seen: set[str] = set()
        todo = [level_id]
        while todo:
            current = todo.pop()
            if current in seen or not self.has_level(current):
                continue
            seen.add(current)
            todo.extend(self.level(current).prerequisites)
        return seen

    def covered_by(self, held: Iterable[str]) -> set[str]:
        """Every level a person holding ``held`` counts as holding."""
        out: set[str] = set()
        for level_id in held:
            out |= self.implied(level_id)
        return out

    def missing_prerequisites(self, level_id: str, held: Iterable[str]) -> list[str]:
        covered = self.covered_by(held)
        return [p for p in self.level(level_id).prerequisites if p not in covered]

    def objective(self, objective_id: str) -> Objective | None:
        for level in self.levels:
            for objective in level.objectives:
                if objective.id == objective_id:
                    return objective
        return None

    def _suggest(self, level_id: str) -> str:
        close = difflib.get_close_matches(level_id, self.level_ids, n=1)
        options = ", ".join(self.level_ids)
        return f"did you mean '{close[0]}'? levels: {options}" if close else f"levels: {options}"


def parse_program(text: str, *, source: str = "certification/program.yml") -> Program:
    """Validate the program file (schema, then cross-references) and build the model."""
    located = load_document(text, kind="program", source=source)
    data = located.data
    problems: list[str] = []
    levels: list[Level] = []
    seen_levels: list[str] = []
    seen_modules: set[str] = set()
    seen_objectives: set[str] = set()
    for li, raw in enumerate(data["levels"]):
        where = ("levels", li)
        if raw["id"] in seen_levels:
            problems.append(located_problem(source, located, (*where, "id"),
                                            f"level '{raw['id']}' is defined twice"))
        for pi, prereq in enumerate(raw["prerequisites"]):
            if prereq not in seen_levels:
                hint = ("a prerequisite must be a level listed above this one"
                        + (f" (levels so far: {', '.join(seen_levels)})" if seen_levels else
                           "; the first level has none"))
                problems.append(located_problem(source, located, (*where, "prerequisites", pi),
                                                f"unknown prerequisite '{prereq}': {hint}"))
        modules: list[Module] = []
        for mi, raw_module in enumerate(raw["modules"]):
            mwhere = (*where, "modules", mi)
            if raw_module["id"] in seen_modules:
                problems.append(located_problem(source, located, (*mwhere, "id"),
                                                f"module '{raw_module['id']}' is defined twice"))
            seen_modules.add(raw_module["id"])
            objectives: list[Objective] = []
            for oi, raw_obj in enumerate(raw_module["objectives"]):
                if raw_obj["id"] in seen_objectives:
                    problems.append(located_problem(
                        source, located, (*mwhere, "objectives", oi, "id"),
                        f"objective '{raw_obj['id']}' is defined twice"))
                seen_objectives.add(raw_obj["id"])
                objectives.append(Objective(raw_obj["id"], raw_obj["text"], raw_module["id"]))
            modules.append(Module(raw_module["id"], raw_module["title"], tuple(objectives)))
        seen_levels.append(raw["id"])
        levels.append(Level(
            id=raw["id"], title=raw["title"], hours=raw["hours"], focus=raw["focus"],
            cvf_version=str(raw.get("cvf_version", "")), prerequisites=tuple(raw["prerequisites"]),
            exam_format=raw["exam"]["format"], pass_score=raw["exam"]["pass_score"],
            modules=tuple(modules)))
    if problems:
        raise DocumentError(problems[0], problems=problems)
    return Program(title=str(data.get("title", "Certification")), levels=tuple(levels))
