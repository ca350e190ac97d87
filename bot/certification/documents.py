"""Loading the program's YAML documents with the same located errors as the config.

Each document type has a JSON Schema next to this module (``schemas/<kind>.json``);
problems come back as ``file:line: key.path: message`` so an author can fix the exact
line, the way ``.github/cvf.yml`` errors read.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from bot.config import validation_problems
from bot.errors import CvfError, InputError
from bot.yamlsource import LocatedYaml, load_located


class DocumentError(InputError):
    """A program, bank, rubric, scenario or submission file is invalid; lists every problem."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None,
                 problems: list[str] | None = None):
        super().__init__(message, where=where, hint=hint)
        self.problems = problems or [str(self)]


@cache
def document_schema(kind: str) -> dict[str, Any]:
    folder = resources.files("bot.certification").joinpath("schemas")
    text = folder.joinpath(f"{kind}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_document(text: str, *, kind: str, source: str) -> LocatedYaml:
    """Parse and validate ``text``; raise one ``DocumentError`` naming every problem."""
    try:
        located = load_located(text, source=source)
    except CvfError as exc:
        raise DocumentError(exc.message, where=exc.where, hint=exc.hint) from None
    if not isinstance(located.data, dict):
        raise DocumentError("expected a mapping at the top level", where=f"{source}:1",
                            hint=f"see bot/certification/schemas/{kind}.json for the format")
    problems = validation_problems(located.data, located, source, document_schema(kind))
    if problems:
        raise DocumentError(problems[0], problems=problems)
    return located
