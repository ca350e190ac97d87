"""One reply format for every concern (RFC, routing, certification), as Prow answers.

A reply names the person (``@login: …``), links the comment it answers ("In response to
[this](url)"), quotes the command, says why and what to do instead. Each handler keeps
its own way of posting (sticky comment, plain comment) and its own idempotency marker;
only the words come from here, so people see one shape whichever part of the bot spoke.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from bot.markdown import Md, code, mention
from bot.templating import render

QUOTE_LINES = 6  # a reply quotes at most this many lines of the comment it answers


def reply_body(marker: str, login: str, reason: str, *, quote: str | None = None,
               url: str = "", details: Sequence[str] = (), instead: str | None = None,
               more: Md | None = None) -> str:
    """The markdown of a reply.

    ``reason`` and ``instead`` are sentences: plain strings are escaped (user text may be
    in them), :class:`~bot.markdown.Md` values are the bot's own markup and kept.
    ``more`` is a block of the bot's markup (a short command list) placed after them.
    """
    lines = [line for line in (quote or "").splitlines() if line.strip()]
    shown = [code(line.strip()) if line.lstrip().startswith("/") else line
             for line in lines[:QUOTE_LINES]]
    if not re.fullmatch(r"https://[^\s()<>\[\]]+", url or ""):
        url = ""  # a link GitHub gave us, or none: never markup from elsewhere
    return render("reply.md.j2", marker=marker, who=mention(login), reason=reason,
                  details=list(details), instead=instead, more=more, url=url,
                  quote=shown, cut=max(0, len(lines) - QUOTE_LINES))


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known name to a misspelt one (``acept`` -> ``accept``), or None."""
    found = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return found[0] if found else None
