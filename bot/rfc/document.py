"""One RFC file: YAML front matter between ``---`` lines, then a markdown body.

Parsing is deliberately lenient about field *values* (the typed accessors return
``None`` or empty tuples for a malformed value) and strict about *structure* (a file
that is not text, has no front matter, or whose front matter is not a YAML mapping
raises ``DocumentError``). That split lets the linter report every bad value with its
line, while the rest of the bot can trust a document that lints clean.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from bot.errors import InputError
from bot.yamlsource import LocatedYaml, load_located

#: Front-matter fields in their canonical order (new fields are inserted in this order).
FIELDS: tuple[str, ...] = (
    "rfc", "title", "type", "status", "authors", "created", "discussion",
    "comment_period_ends", "decision", "supersedes", "superseded_by", "requires",
)
#: Lifecycle states; fixed by the governance engine, not configurable.
STATUSES: tuple[str, ...] = (
    "draft", "open_for_comment", "review", "accepted", "rejected", "withdrawn", "postponed",
)
DECISION_FIELDS: tuple[str, ...] = ("date", "deciders", "tally", "reason", "url")
#: Large enough for any real RFC, small enough that a mistaken upload fails fast.
MAX_BYTES = 1024 * 1024
TEMPLATE_NAME = "0000-template.md"
INDEX_NAME = "README.md"

_FENCE_LINE = re.compile(r"^(?:---|\.\.\.)[ \t]*\r?$", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_CODE_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?Z$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOP_KEY = re.compile(r"^([^\s#'\"-][^:]*?)[ \t]*:(?:[ \t]|$)")


class DocumentError(InputError):
    """A file that cannot be read as an RFC at all; ``rule`` is the lint rule it breaks."""

    def __init__(self, message: str, *, path: str, line: int = 1, rule: str = "RFC-001",
                 hint: str | None = None):
        super().__init__(message, where=f"{path}:{line}", hint=hint)
        self.path = path
        self.line = line
        self.rule = rule


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    line: int  # 1-based line in the whole file


@dataclass(frozen=True)
class Decision:
    """The recorded outcome: when, who decided, and the final tally (vote -> count)."""

    date: date | None
    deciders: tuple[str, ...]
    tally: dict[str, int] = field(default_factory=dict)
    reason: str | None = None
    url: str | None = None


@dataclass
class RfcDocument:
    """A parsed RFC file. ``meta`` is the raw front matter; properties give typed views."""

    path: str
    text: str
    meta: dict[str, Any]
    located: LocatedYaml
    body: str
    body_line: int  # 1-based line where the body starts
    front_matter_end: int  # 1-based line of the closing ``---``

    # -- typed fields ---------------------------------------------------------------
    @property
    def number(self) -> int | None:
        value = self.meta.get("rfc")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def title(self) -> str:
        value = self.meta.get("title")
        return value.strip() if isinstance(value, str) else ""

    @property
    def type(self) -> str | None:
        value = self.meta.get("type")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str | None:
        value = self.meta.get("status")
        return value if isinstance(value, str) else None

    @property
    def authors(self) -> tuple[str, ...]:
        return _strings(self.meta.get("authors"))

    @property
    def created(self) -> date | None:
        return as_date(self.meta.get("created"))

    @property
    def comment_period_ends(self) -> datetime | None:
        return as_timestamp(self.meta.get("comment_period_ends"))

    @property
    def discussion(self) -> str | None:
        value = self.meta.get("discussion")
        return value if isinstance(value, str) and value else None

    @property
    def decision(self) -> Decision | None:
        raw = self.meta.get("decision")
        if not isinstance(raw, dict):
            return None
        tally_raw = raw.get("tally")
        tally = ({str(k): v for k, v in tally_raw.items()
                  if isinstance(v, int) and not isinstance(v, bool)}
                 if isinstance(tally_raw, dict) else {})
        reason = raw.get("reason")
        url = raw.get("url")
        return Decision(date=as_date(raw.get("date")), deciders=_strings(raw.get("deciders")),
                        tally=tally, reason=reason if isinstance(reason, str) else None,
                        url=url if isinstance(url, str) else None)

    @property
    def supersedes(self) -> tuple[int, ...]:
        return _numbers(self.meta.get("supersedes"))

    @property
    def superseded_by(self) -> tuple[int, ...]:
        return _numbers(self.meta.get("superseded_by"))

    @property
    def requires(self) -> tuple[int, ...]:
        return _numbers(self.meta.get("requires"))

    @property
    def file_name(self) -> str:
        return Path(self.path).name

    # -- locations ------------------------------------------------------------------
    def line_of(self, *path: str | int) -> int:
        """1-based file line of a front-matter key path (its parent's if it is missing)."""
        return self.located.line_of(tuple(path))

    def column_of(self, *path: str | int) -> int:
        """1-based column where the key (or list item) at ``path`` starts on its line."""
        line = self.line_of(*path)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        needle = path[-1] if path and isinstance(path[-1], str) else self._value_at(path)
        if needle:
            found = text.find(needle)
            if found >= 0:
                return found + 1
        return len(text) - len(text.lstrip()) + 1

    def _value_at(self, path: tuple[str | int, ...]) -> str | None:
        node: Any = self.meta
        for part in path:
            in_dict = isinstance(node, dict) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
            if not (in_dict or in_list):
                return None
            node = node[part]
        return node if isinstance(node, str) else None

    @cached_property
    def field_lines(self) -> list[tuple[str, int]]:
        """Every top-level front-matter key as written, with its file line (repeats kept)."""
        front = self.lines[1:self.front_matter_end - 1]
        return [(match.group(1).strip().strip("'\""), index + 2)
                for index, line in enumerate(front) if (match := _TOP_KEY.match(line))]

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @cached_property
    def headings(self) -> list[Heading]:
        """ATX headings of the body, ignoring anything inside fenced code blocks."""
        found: list[Heading] = []
        fence: str | None = None
        for offset, line in enumerate(self.body.splitlines()):
            marker = _CODE_FENCE.match(line)
            if fence is not None:
                if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
                    fence = None
                continue
            if marker:
                fence = marker.group(1)
                continue
            match = _HEADING.match(line)
            if match:
                found.append(Heading(len(match.group(1)), match.group(2).strip(),
                                     self.body_line + offset))
        return found

    def section_text(self, heading: Heading) -> str:
        """The text under ``heading`` up to the next heading of the same or a higher level."""
        lines = self.lines
        end = len(lines)
        for other in self.headings:
            if other.line > heading.line and other.level <= heading.level:
                end = other.line - 1
                break
        return "\n".join(lines[heading.line:end])


# -- reading and parsing ------------------------------------------------------------
def load_rfc(file: str | Path, *, display: str | None = None) -> RfcDocument:
    """Read and parse an RFC file; ``display`` is the path used in messages."""
    path = Path(file)
    shown = display if display is not None else str(file)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise DocumentError("is a folder, not an RFC file", path=shown, rule="RFC-000",
                            hint="pass .md files or the RFC folder itself") from None
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}", path=shown,
                            rule="RFC-000", hint="check the path and its permissions") from None
    if len(raw) > MAX_BYTES:
        size = path.stat().st_size
        raise DocumentError(f"file is too large ({size / 1e6:.1f} MB); an RFC must be at most "
                            f"{MAX_BYTES // 1024} KiB", path=shown, rule="RFC-000",
                            hint="move data and images out of the RFC and link to them")
    return parse_rfc(decode(raw, shown), path=shown)


def decode(raw: bytes, path: str) -> str:
    """Bytes to text, refusing binary files with the place of the first bad byte."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DocumentError(f"not a text file (binary data at byte {nul})", path=path,
                            line=raw.count(b"\n", 0, nul) + 1, rule="RFC-000",
                            hint="an RFC is a UTF-8 markdown file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not UTF-8 text (bad byte at offset {exc.start})", path=path,
                            line=raw.count(b"\n", 0, exc.start) + 1, rule="RFC-000",
                            hint="save the file as UTF-8") from None


def parse_rfc(text: str, *, path: str = "<rfc>") -> RfcDocument:
    """Split and parse an RFC's text; raise ``DocumentError`` if it has no usable front matter."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise DocumentError("file is empty", path=path, rule="RFC-000",
                            hint="start from rfcs/0000-template.md or run `cvf rfc new`")
    opening, close_start, close_end = _front_matter_span(text, path)
    front = text[opening:close_start]
    front_end_line = text.count("\n", 0, close_start) + 1
    try:
        located = load_located(front, source=path, line_offset=1)
    except InputError as exc:
        line = _line_from_where(exc.where)
        raise DocumentError(exc.message, path=path, line=line, hint=exc.hint) from None
    data = located.data
    if data is None:
        raise DocumentError("front matter is empty", path=path, line=1,
                            hint="add the fields rfc, title, type, status, authors, created")
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
        raise DocumentError(f"front matter must be a mapping of fields, got {kind}", path=path,
                            line=located.line_of(()),
                            hint="write `field: value` lines, e.g. `title: My proposal`")
    return RfcDocument(path=path, text=text, meta=data, located=located, body=text[close_end:],
                       body_line=front_end_line + 1, front_matter_end=front_end_line)


def _front_matter_span(text: str, path: str) -> tuple[int, int, int]:
    """(start of YAML, start of closing fence line, start of body) offsets in ``text``."""
    first_end = text.find("\n")
    first = text if first_end < 0 else text[:first_end]
    if first.rstrip() != "---":
        raise DocumentError("no front matter: the file must start with a `---` line", path=path,
                            hint="put the fields (rfc, title, type, ...) between two `---` lines "
                                 "at the top of the file")
    opening = len(text) if first_end < 0 else first_end + 1
    closing = _FENCE_LINE.search(text, opening)
    if closing is None:
        raise DocumentError("front matter is not closed", path=path,
                            hint="end the front matter with a `---` line before the markdown")
    newline = text.find("\n", closing.end())
    body_start = len(text) if newline < 0 else newline + 1
    return opening, closing.start(), body_start


def _line_from_where(where: str | None) -> int:
    if where and ":" in where:
        tail = where.rsplit(":", 1)[1]
        if tail.isdigit():
            return int(tail)
    return 1


def rfc_files(directory: Path) -> list[Path]:
    """The RFC files in a folder: every ``*.md`` except the index and the template."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.md")
                  if p.name not in (INDEX_NAME, TEMPLATE_NAME) and p.is_file())


# -- values -------------------------------------------------------------------------
def as_date(value: Any) -> date | None:
    """A ``YYYY-MM-DD`` date (YAML gives ``date`` for plain, ``str`` for quoted values)."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def as_timestamp(value: Any) -> datetime | None:
    """A UTC instant written ``YYYY-MM-DDTHH:MM[:SS]Z``; other zones or naive times are None."""
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None or offset.total_seconds() != 0:
            return None
        return value.astimezone(UTC)
    if isinstance(value, str) and _TIMESTAMP.match(value):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return None
    return None


def format_timestamp(value: datetime) -> str:
    """The one way the bot writes instants: ``2026-12-09T17:00:00Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(title: str, *, max_length: int = 60) -> str:
    """``"Add Multi-Agent Routing"`` -> ``"add-multi-agent-routing"`` (file-name safe)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug or "untitled"


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _numbers(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(v for v in items if isinstance(v, int) and not isinstance(v, bool))


# -- rewriting the front matter -----------------------------------------------------
def update_front_matter(text: str, changes: Mapping[str, Any]) -> str:
    """Set (or, with ``None``, remove) top-level front-matter fields of an RFC's text.

    Lines of untouched fields, comments and the whole body stay byte-identical; a
    changed field is rewritten in place, a new one is inserted at its canonical
    position (``FIELDS`` order). The result is re-parsed to prove the change landed.
    """
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    text = text[len(bom):]
    parse_rfc(text, path="<update>")  # same structural checks as reading
    opening, close_start, _ = _front_matter_span(text, "<update>")
    newline = "\r\n" if text[:opening].endswith("\r\n") else "\n"
    lines = _physical_lines(text[opening:close_start])
    blocks = _key_blocks(lines)
    for key, value in changes.items():
        if key in blocks:
            start, end = blocks[key]
            new = [] if value is None else dump_field(key, value)
            lines[start:end] = new
        elif value is not None:
            at = _insert_at(key, blocks, len(lines))
            lines[at:at] = dump_field(key, value)
        blocks = _key_blocks(lines)
    front = "".join(line + newline for line in lines)
    result = bom + text[:opening] + front + text[close_start:]
    try:
        updated = parse_rfc(result, path="<update>")
    except DocumentError:
        raise InputError("could not rewrite the front matter: it is not written as one "
                         "`field: value` line (or block) per field",
                         hint="write each field on its own line, then retry") from None
    for key, value in changes.items():
        if value is None:
            if key in updated.meta:
                raise InputError(f"could not remove front-matter field '{key}'",
                                 hint="the field is repeated or unusually formatted; "
                                      "edit it by hand")
        elif _normal(updated.meta.get(key)) != _normal(value):
            raise InputError(f"could not write front-matter field '{key}'",
                             hint="the front matter is unusually formatted; edit it by hand")
    return result


def _physical_lines(chunk: str) -> list[str]:
    """Split on newlines only: ``str.splitlines`` also splits on NEL, LS and PS, which
    may stand inside a YAML scalar and must survive a rewrite."""
    lines = [line.removesuffix("\r") for line in chunk.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _key_blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Top-level key -> (first line, end line) of its block in the front-matter lines."""
    starts: list[tuple[str, int]] = []
    for index, line in enumerate(lines):
        match = _TOP_KEY.match(line)
        if match:
            starts.append((match.group(1).strip().strip("'\""), index))
    blocks: dict[str, tuple[int, int]] = {}
    for position, (key, start) in enumerate(starts):
        limit = starts[position + 1][1] if position + 1 < len(starts) else len(lines)
        end = start + 1
        for index in range(start + 1, limit):
            if _continues(lines[index]):
                end = index + 1
        blocks.setdefault(key, (start, end))
    return blocks


def _continues(line: str) -> bool:
    return line.startswith((" ", "\t", "- ")) or line.rstrip() == "-"


def _insert_at(key: str, blocks: dict[str, tuple[int, int]], length: int) -> int:
    if key not in FIELDS:
        return length
    before = FIELDS[:FIELDS.index(key)]
    ends = [end for name, (_, end) in blocks.items() if name in before]
    if ends:
        return max(ends)
    later = [start for name, (start, _) in blocks.items() if name in FIELDS]
    return min(later) if later else length


def dump_field(key: str, value: Any) -> list[str]:
    """YAML lines for one top-level field, in the style RFC authors write by hand."""
    if isinstance(value, Mapping):
        if not value:
            return [f"{key}: {{}}"]
        return [f"{key}:", *_dump_mapping(value, indent=2)]
    return [f"{key}: {_inline(value)}"]


def _dump_mapping(value: Mapping[str, Any], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for key, item in value.items():
        name = _scalar(str(key))
        if isinstance(item, Mapping) and item:
            out.append(f"{pad}{name}:")
            out.extend(_dump_mapping(item, indent + 2))
        else:
            out.append(f"{pad}{name}: {_inline(item)}")
    return out


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        parts = ", ".join(f"{_scalar(str(k), flow=True)}: {_inline(v)}" for k, v in value.items())
        return "{" + parts + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline_item(v) for v in value) + "]"
    return _scalar(value)


def _inline_item(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        return _inline(value)
    return _scalar(value, flow=True)


def _scalar(value: Any, *, flow: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if _plain_ok(text, flow):
        return text
    quoted = yaml.safe_dump(text, default_style='"', allow_unicode=True, width=1 << 30)
    return quoted.rstrip("\n")


@cache
def _plain_ok(text: str, flow: bool) -> bool:
    """Whether ``text`` can be written unquoted and still read back as the same string."""
    if not text or text != text.strip() or "\n" in text or "\r" in text:
        return False
    if text[0] in "-?:,[]{}#&*!|>'\"%@`" or ": " in text or " #" in text or text.endswith(":"):
        return False
    if flow and any(ch in text for ch in ",[]{}"):
        return False
    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value

