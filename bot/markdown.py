"""Putting user-written text into the bot's markdown safely.

Text a user wrote (a PR title, a vote reason, a concern name) is quoted back in bot
comments. It must not @-mention anyone, open HTML, fake a table row, or carry the
bot's hidden markers, so a user can never make a comment look like the bot's state.
"""

from __future__ import annotations

import html
import re

_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|!~])")
ZERO_WIDTH_JOINER = "\u200d"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)


def escape_md(text: object) -> str:
    """Inline-safe markdown: no mentions, no HTML, no markup, one line."""
    value = " ".join(str(text).split())
    value = html.escape(value, quote=False)
    value = _MD_SPECIAL.sub(r"\\\1", value)
    # "@user" -> "@\u200duser": still readable, but GitHub no longer notifies the user.
    return _MENTION.sub("@" + ZERO_WIDTH_JOINER, value)


def escape_table_cell(text: object) -> str:
    """Safe inside a markdown table cell (pipes and newlines cannot open a new cell/row)."""
    return escape_md(text)


def fence_safe(text: object) -> str:
    """Text to place inside a ``` block: backtick runs are broken so the fence cannot close."""
    return str(text).replace("```", "`\u200b``").replace("<!--", "&lt;!--")


def mention(login: str) -> str:
    """A deliberate @-mention of a login the bot trusts (committee members, authors)."""
    return "@" + re.sub(r"[^A-Za-z0-9\-\[\]/_.]", "", login)


def command_lines(body: str) -> list[tuple[int, str]]:
    """(1-based line number, text) of lines that are prose, not code, quotes or comments.

    Every slash-command reader (`/rfc`, `/vote`, `/approve-risk`, `/cert`, `/grade`) reads
    only these lines, so quoting or showing a command in a code block never runs it.
    """
    text = _HTML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), body or "")
    out: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        marker = _FENCE.match(line)
        if fence is not None:
            if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence) \
                    and not line.strip()[len(marker.group(1)):].strip():
                fence = None
            continue
        if marker:
            fence = marker.group(1)
            continue
        if line.startswith(("    ", "\t")) or line.lstrip().startswith(">"):
            continue
        out.append((number, line))
    return out
