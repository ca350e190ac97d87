"""Safe YAML loading that remembers where every key came from.

Config and front-matter errors must name the line, so we compose the node tree once
(yaml's safe composer, never a Python-object constructor) and record the line of each
key path while building plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.errors import InputError

Path = tuple[str | int, ...]
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Anchors and aliases are fine in moderation; a document that expands past this many
# values (each alias counted again) is an attack on whatever walks the data afterwards.
MAX_EXPANDED = 100_000
# No config, registry, certification document or front matter comes near this; a bigger
# text is refused before the parser spends seconds on it.
MAX_BYTES = 1 << 20


def size_problem(size: int) -> str | None:
    """Why a YAML text of ``size`` bytes is refused before parsing (None: it is not)."""
    if size <= MAX_BYTES:
        return None
    return (f"the file is {size:,} bytes, over the {MAX_BYTES:,}-byte limit for a YAML "
            "document")


@dataclass
class LocatedYaml:
    """Plain data plus the 1-based line of each key path (``("rfc", "quorum")``)."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    line_offset: int = 0

    def line_of(self, path: Path) -> int:
        """Line of the deepest known prefix of ``path`` (so a missing key points at its parent)."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe] + self.line_offset
            probe = probe[:-1]
        return self.lines.get((), 1) + self.line_offset


def load_located(text: str, *, source: str, line_offset: int = 0) -> LocatedYaml:
    """Parse ``text`` safely; raise ``InputError`` with ``source:line`` on bad YAML."""
    too_big = size_problem(len(text.encode("utf-8", "surrogatepass")))
    if too_big:
        raise InputError(too_big, where=source,
                         hint="keep the file small: split it or remove generated content")
    try:
        node, data = _parse_once(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1 if mark else 1) + line_offset
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", where=f"{source}:{line}",
                         hint="check indentation, colons and quoting on that line") from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", where=source) from None
    except RecursionError:
        raise InputError("invalid YAML: nested too deeply", where=source) from None
    located = LocatedYaml(data=data, line_offset=line_offset)
    if node is not None:
        located.lines[()] = node.start_mark.line + 1
        _record_lines(node, (), located.lines, set())
    return located


def _parse_once(text: str) -> tuple[yaml.Node | None, Any]:
    # One parse: the plain data is built from the composed node (libyaml when present).
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            sizes: dict[int, int] = {}
            try:
                _expanded_size(node, sizes, set())
            except _TooMany:
                # Say what is really wrong: a big document, or one that aliases blow up.
                raise yaml.YAMLError(
                    f"the document expands to more than {MAX_EXPANDED:,} values through "
                    "its aliases" if _has_alias(node) else
                    f"the document has more than {MAX_EXPANDED:,} values") from None
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values the data has once aliases are expanded; refuses an alias to a node
    that contains it (recursive data that no consumer could walk) and alias bombs."""
    key = id(node)
    if key in open_nodes:
        raise yaml.YAMLError("an alias refers to a node that contains it (recursive data)")
    if key in sizes:
        return sizes[key]
    open_nodes.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    size = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    if size > MAX_EXPANDED:
        raise _TooMany
    sizes[key] = size
    return size


class _TooMany(Exception):
    """The value count passed ``MAX_EXPANDED`` (worded by the caller)."""


def _has_alias(root: yaml.Node) -> bool:
    """Does any node appear twice in the tree (that is what an alias is once composed)?"""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(part for pair in node.value for part in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return False


def _record_lines(node: yaml.Node, path: Path, lines: dict[Path, int], seen: set[int]) -> None:
    # Aliases share nodes; visiting each node once keeps "billion laughs" documents linear.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines, seen)
