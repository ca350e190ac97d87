"""Path globs for skill scopes, compiled once into one regular expression per skill.

The rules people expect from .gitignore-style patterns: ``*`` and ``?`` stay within one
folder, ``**`` crosses folders (``**/`` may match no folder at all), ``[abc]`` is a
character class, a trailing ``/`` covers everything under that folder, and a pattern is
anchored at the repository root (a leading ``/`` is allowed and ignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.errors import InputError


def glob_to_regex(pattern: str) -> str:
    text = pattern.strip().lstrip("/")
    if not text:
        raise InputError("an empty path glob matches nothing", hint='write e.g. "deploy/**"')
    if text.endswith("/"):
        text += "**"
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if text.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif text.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = text.find("]", i + 2)
            if end == -1:
                raise InputError(f'unclosed "[" in path glob "{pattern}"',
                                 hint="close the character class or escape it as [[]")
            body = text[i + 1:end].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


class PathScope:
    """A set of globs; ``matches(path)`` is one regex call whatever the number of globs."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        parts = [glob_to_regex(p) for p in self.patterns]
        self._regex = re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None

    def matches(self, path: str) -> bool:
        return self._regex is not None and self._regex.fullmatch(path) is not None
