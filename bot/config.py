"""The one configuration file, `.github/cvf.yml`.

The JSON Schema (assembled from one fragment per section in ``bot/schemas/``) is the
single source of truth: it validates, it carries the defaults, and it generates the
config reference in the README. An empty file is a valid configuration.
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from bot.errors import ConfigError, CvfError
from bot.yamlsource import LocatedYaml, load_located, size_problem

DEFAULT_PATH = ".github/cvf.yml"
SECTIONS = ("rfc", "github", "server", "routing", "metrics", "certification")


@cache
def schema() -> dict[str, Any]:
    """The whole-file JSON Schema (draft 2020-12), sections' ``$defs`` hoisted and prefixed."""
    root: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://cvf-governance.dev/schemas/cvf.schema.json",
        "title": "CVF Governance configuration (.github/cvf.yml)",
        "type": "object",
        "additionalProperties": False,
        "properties": {},
        "$defs": {},
    }
    for section in SECTIONS:
        text = resources.files("bot.schemas").joinpath(f"{section}.json").read_text("utf-8")
        fragment = json.loads(text.replace('"#/$defs/', f'"#/$defs/{section}.'))
        for name, definition in fragment.pop("$defs", {}).items():
            root["$defs"][f"{section}.{name}"] = definition
        fragment.setdefault("default", {})
        root["properties"][section] = fragment
    return root


@dataclass
class Config:
    """Validated configuration with every default filled in."""

    data: dict[str, Any]
    path: str = DEFAULT_PATH
    root: Path = field(default_factory=Path)

    def section(self, name: str) -> dict[str, Any]:
        return self.data[name]

    @property
    def rfc(self) -> dict[str, Any]:
        return self.data["rfc"]


def load_config(path: str | Path | None = None, *, root: str | Path = ".") -> Config:
    """Load the config file under ``root``; a missing file means all defaults."""
    root_path = Path(root)
    rel = str(path) if path is not None else DEFAULT_PATH
    file = root_path / rel
    if not file.exists():
        if path is not None:
            raise ConfigError("config file not found", where=rel,
                              hint=f"create it (an empty file is valid) or drop --config; "
                                   f"the default is {DEFAULT_PATH}")
        return Config(data=with_defaults({}), path=rel, root=root_path)
    try:
        # The size first: an oversized file is refused before it is read or parsed.
        too_big = size_problem(file.stat().st_size)
        if too_big:
            raise ConfigError(too_big, where=rel, hint="a config file holds settings only; "
                              "keep it under the limit")
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", where=rel,
                          hint="save the file as UTF-8 text") from None
    return parse_config(text, source=rel, root=root_path)


def parse_config(text: str, *, source: str = DEFAULT_PATH, root: str | Path = ".") -> Config:
    """Validate config text; raise one ``ConfigError`` listing every problem found."""
    data, located = load_yaml(text, source=source)
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of sections ({', '.join(SECTIONS)}), "
                          f"got {_kind(data)}", where=f"{source}:{located.line_of(())}",
                          hint="start the file with a section name such as `rfc:`")
    check_against(data, located, source)
    return Config(data=with_defaults(data), path=source, root=Path(root))


def load_yaml(text: str, *, source: str) -> tuple[Any, LocatedYaml]:
    """A YAML file's data (an empty file is ``{}``) with its line numbers; broken YAML is a
    ``ConfigError`` naming the line."""
    try:
        located = load_located(text, source=source)
    except CvfError as exc:
        raise ConfigError(exc.message, where=exc.where, hint=exc.hint) from None
    return (located.data if located.data is not None else {}), located


def check_against(data: Any, located: LocatedYaml, source: str,
                  against: dict[str, Any] | None = None) -> None:
    """Raise one ``ConfigError`` listing every violation of ``against`` (default: the
    config schema), if there is any."""
    problems = validation_problems(data, located, source, against)
    if problems:
        raise ConfigError(problems[0], problems=problems)


def validation_problems(data: Any, located: LocatedYaml, source: str,
                        against: dict[str, Any] | None = None) -> list[str]:
    """Every violation of ``against`` (default: the config schema) as
    ``file:line: key.path: message``, in file order."""
    validator = jsonschema.Draft202012Validator(against if against is not None else schema())
    found: list[tuple[int, str]] = []
    for error in validator.iter_errors(data):
        for path, message in _explain(error):
            found.append((located.line_of(path), located_problem(source, located, path, message)))
    found.sort()
    return list(dict.fromkeys(text for _, text in found))


def located_problem(source: str, located: LocatedYaml, path: tuple[Any, ...], message: str) -> str:
    """One problem as ``file:line: key.path: message`` (also for checks beyond the schema)."""
    dotted = ".".join(str(p) for p in path) or "(top level)"
    return f"{source}:{located.line_of(path)}: {dotted}: {message}"


def _explain(error: jsonschema.ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    path = tuple(error.absolute_path)
    sub = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(sub.get("properties", {}))
        out = []
        for key in error.instance:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            out.append(((*path, key), f"unknown key '{key}'; {hint}"))
        return out
    if error.validator in {"oneOf", "anyOf"} and error.context:
        # Say what the first alternative expected, which is the documented form.
        best = min(error.context, key=lambda e: len(list(e.absolute_schema_path)))
        return [(path, _message(best))]
    return [(path, _message(error))]


def _message(error: jsonschema.ValidationError) -> str:
    sub = error.schema if isinstance(error.schema, dict) else {}
    expected = sub.get("x-expected")
    got = json.dumps(error.instance, default=str)
    if error.validator in {"pattern", "format"} and expected:
        return f"expected {expected}, got {got}"
    if error.validator == "type":
        return f"expected {_article(error.validator_value)}, got {_kind(error.instance)} {got}"
    if error.validator == "enum":
        options = ", ".join(json.dumps(v) for v in sub.get("enum", []))
        return f"expected one of {options}, got {got}"
    if error.validator == "const":
        alternative = expected or "a valid value"
        return f"expected {json.dumps(error.validator_value)} or {alternative}, got {got}"
    return error.message


def _article(type_name: Any) -> str:
    names = type_name if isinstance(type_name, list) else [type_name]
    words = {"object": "a mapping", "array": "a list", "string": "a string",
             "integer": "a whole number", "number": "a number",
             "boolean": "true or false", "null": "nothing"}
    return " or ".join(words.get(str(n), str(n)) for n in names)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "nothing"
    return "a string"


def with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` with the schema's defaults filled in, section by section."""
    return _fill(schema(), copy.deepcopy(data), schema())


def _fill(node_schema: dict[str, Any], value: Any, root: dict[str, Any]) -> Any:
    node_schema = _resolve(node_schema, root)
    if not isinstance(value, dict) or node_schema.get("type") != "object":
        return value
    for key, prop in node_schema.get("properties", {}).items():
        prop = _resolve(prop, root)
        if key not in value and "default" in prop:
            value[key] = copy.deepcopy(prop["default"])
        if key in value:
            value[key] = _fill(prop, value[key], root)
    extra = node_schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in value:
            if key not in node_schema.get("properties", {}):
                value[key] = _fill(extra, value[key], root)
    return value


def _resolve(node_schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node_schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return root["$defs"][ref.removeprefix("#/$defs/")]
    return node_schema
