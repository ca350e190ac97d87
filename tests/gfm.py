"""Render markdown as GitHub shows a comment, so tests assert on what people see.

markdown-it-py in CommonMark mode with GFM's tables and strikethrough (GitHub's comment
renderer is CommonMark + GFM extensions). Raw HTML stays enabled, as on GitHub, so a test
sees it if user text ever slips through unescaped.
"""

from __future__ import annotations

import re
from html import unescape

from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def to_html(markdown: str) -> str:
    return _MD.render(markdown)


def visible_text(markdown: str) -> str:
    """The words a reader sees (tags dropped, entities decoded, HTML comments hidden)."""
    html = re.sub(r"<!--.*?-->", "", to_html(markdown), flags=re.DOTALL)
    return unescape(re.sub(r"<[^>]+>", "", html)).strip()


def code_spans(markdown: str) -> list[str]:
    """The text of every inline code span and code block, as rendered."""
    return [unescape(c) for c in re.findall(r"<code[^>]*>(.*?)</code>", to_html(markdown),
                                            flags=re.DOTALL)]


def literal_escapes(markdown: str) -> list[str]:
    """Backslash-escapes a reader would see as text ("\\`setup.cfg\\`"): our bug, if any."""
    text = visible_text(markdown)
    return re.findall(r"\\[`*_\[\]<>#|!~]", text)
