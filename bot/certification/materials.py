"""Everything the program is made of, read through one function ``read(path) -> text``.

The CLI reads from the checkout and the bot from the default branch through the GitHub
port; both hand a reader here so the parsing and the errors are the same. The bot never
reads the program, banks or rubrics from a pull request's branch: a submission cannot
change the exam it is graded against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.certification.bank import QuestionBank, parse_bank
from bot.certification.program import Program, parse_program
from bot.certification.registry import Registry, parse_registry
from bot.certification.rubric import Rubric, parse_rubric
from bot.certification.scenario import Scenario, parse_scenario
from bot.errors import InputError

Reader = Callable[[str], str | None]


@dataclass
class Materials:
    section: dict[str, Any]
    read: Reader
    _program: Program | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def program(self) -> Program:
        if self._program is None:
            path = self.section["program"]
            self._program = parse_program(self._need(path, "the certification program"),
                                          source=path)
        return self._program

    def bank(self, level: str) -> QuestionBank:
        path = f"{self.section['questions_dir'].rstrip('/')}/{level}.yml"
        return self._cached(path, lambda text: parse_bank(text, self.program, source=path),
                            f"the {level} question bank")

    def rubric(self, level: str) -> Rubric:
        path = f"{self.section['rubrics_dir'].rstrip('/')}/{level}.yml"
        return self._cached(path, lambda text: parse_rubric(text, self.program, source=path),
                            f"the {level} rubric")

    def scenario(self, scenario_id: str) -> Scenario:
        path = f"{self.section['scenarios_dir'].rstrip('/')}/{scenario_id}.yml"
        return self._cached(path, lambda text: parse_scenario(text, source=path),
                            f"scenario {scenario_id}")

    def registry(self) -> Registry:
        return parse_registry(self.read(self.section["registry"]),
                              self.read(self.section["revocations"]),
                              source=self.section["registry"])

    def _cached(self, path: str, parse: Callable[[str], Any], what: str) -> Any:
        if path not in self._cache:
            self._cache[path] = parse(self._need(path, what))
        return self._cache[path]

    def _need(self, path: str, what: str) -> str:
        text = self.read(path)
        if text is None:
            raise InputError(f"{what} is missing", where=path,
                             hint="restore the file or point certification.* in "
                                  ".github/cvf.yml at it")
        return text
