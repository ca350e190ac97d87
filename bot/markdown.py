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


class Md(str):
    """Markdown the bot wrote itself (its own code spans, lists, fences).

    ``escape_md`` passes it through unchanged, so our markup renders as markup while any
    user value put into it went through :func:`md` (escaped) or :func:`code` first.
    """

    __slots__ = ()


def md(template: str, *args: object, **kwargs: object) -> Md:
    """``template`` is our markdown; every ``{}`` value is user text and gets escaped.

    ``md("add {} to {}", code(path), login)``: the words are ours, the values are not; a
    value that is already :class:`Md` (built by ``md`` or ``code``) is kept as it is.
    """
    return Md(template.format(*(escape_md(a) for a in args),
                              **{k: escape_md(v) for k, v in kwargs.items()}))


def code(text: object, *, in_table: bool = False) -> Md:
    """``text`` as one inline code span, whatever backticks it holds (CommonMark 6.1).

    Inside a code span nothing is markup (no mention, link or HTML), so user text needs
    only its newlines folded and the bot's hidden-marker opener broken.
    """
    value = " ".join(str(text).split()).replace("<!--", "<\u200b!--")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value.strip() else ""
    if in_table:  # GFM reads "\\|" as a pipe inside a cell's code span; "|" ends the cell
        value = value.replace("|", "\\|")
    return Md(f"{fence}{pad}{value}{pad}{fence}")


_BACKTICKS = re.compile(r"`+")


def _escape_plain(value: str) -> str:
    value = html.escape(value, quote=False)
    value = _MD_SPECIAL.sub(r"\\\1", value)
    # "@user" -> "@\u200duser": still readable, but GitHub no longer notifies the user.
    return _MENTION.sub("@" + ZERO_WIDTH_JOINER, value)


def _spans(value: str) -> list[tuple[bool, str]]:
    """Split one line into (is_code_span, text) parts the way CommonMark pairs backticks:
    a run of n backticks opens a span closed by the next run of exactly n."""
    parts: list[tuple[bool, str]] = []
    plain_from = pos = 0
    while True:
        opening = _BACKTICKS.search(value, pos)
        if opening is None:
            break
        n = len(opening.group(0))
        closing = next((m for m in _BACKTICKS.finditer(value, opening.end())
                        if len(m.group(0)) == n), None)
        if closing is None:
            pos = opening.end()
            continue
        parts.append((False, value[plain_from:opening.start()]))
        parts.append((True, value[opening.start():closing.end()]))
        plain_from = pos = closing.end()
    parts.append((False, value[plain_from:]))
    return parts


def escape_md(text: object, *, in_table: bool = False) -> str:
    """Inline-safe markdown: no mentions, no HTML, no markup, one line.

    Code spans the text holds (`setup.cfg`, as GitHub renders them in titles) stay code
    spans: inside one nothing is markup. Everything else is escaped. :class:`Md` values
    are the bot's own markup and pass through unchanged.
    """
    if isinstance(text, Md):
        return text
    value = " ".join(str(text).split())
    out = []
    for is_code, part in _spans(value):
        if not is_code:
            out.append(_escape_plain(part))
            continue
        part = part.replace("<!--", "<\u200b!--")
        # In a GFM table a pipe ends the cell even inside a code span; "\|" does not.
        out.append(part.replace("|", "\\|") if in_table else part)
    return "".join(out)


def escape_table_cell(text: object) -> str:
    """Safe inside a markdown table cell (pipes and newlines cannot open a new cell/row)."""
    if isinstance(text, Md):
        return Md(" ".join(text.split()))  # ours: its pipes are already "\\|" where needed
    return escape_md(text, in_table=True)


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
