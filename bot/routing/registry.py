"""Registry files: agents and skills kept outside `.github/cvf.yml`.

A large fleet's agent list changes more often than governance policy, so the routing
section can name YAML files (``routing.registry_files``) holding more ``agents`` and
``skills`` entries. They are validated against the same schema definitions as the inline
entries, with the same ``file:line: key: message`` errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from bot.config import check_against, load_yaml, schema
from bot.errors import ConfigError


@cache
def registry_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": schema()["$defs"],
        "type": "object", "additionalProperties": False,
        "properties": {
            "agents": {"type": "array", "items": {"$ref": "#/$defs/routing.agent"}},
            "skills": {"type": "array", "items": {"$ref": "#/$defs/routing.skill"}},
        },
    }


def parse_registry(text: str, *, source: str) -> dict[str, Any]:
    """Validate one registry file; raise one ``ConfigError`` listing every problem."""
    data, located = load_yaml(text, source=source)
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping with `agents:` and/or `skills:` lists",
                          where=f"{source}:{located.line_of(())}")
    check_against(data, located, source, registry_schema())
    return data


def load_registries(section: Mapping[str, Any], read: Callable[[str], str | None],
                    *, source: str = ".github/cvf.yml") -> list[tuple[str, dict[str, Any]]]:
    """Read and validate each file ``routing.registry_files`` names, with ``read(path)``
    (None: the file does not exist)."""
    loaded = []
    for index, name in enumerate(section.get("registry_files") or []):
        text = read(str(name))
        if text is None:
            raise ConfigError(f"registry file {name} not found",
                              where=f"{source}: routing.registry_files.{index}",
                              hint="create it on the default branch or remove it from the list")
        loaded.append((str(name), parse_registry(text, source=str(name))))
    return loaded
