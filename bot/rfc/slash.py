"""Slash-commands in comments: ``/rfc <subcommand> [argument]`` and ``/vote <option> [reason]``.

One command per line, case-insensitive, several per comment. Lines inside code fences,
indented code, block quotes and HTML comments are never commands: people quote other
people's commands all the time, and a quoted ``/rfc accept`` must not accept anything.
Every line that looks like a command comes back, malformed ones with an ``error``, so the
bot can answer each of them instead of dropping it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from bot.durations import parse_duration
from bot.errors import CvfError
from bot.markdown import command_lines
from bot.rfc.lifecycle import LIFECYCLE_COMMANDS
from bot.rfc.tally import ABSTAIN, APPROVE, REJECT, REQUEST_CHANGES, RETRACT

RFC_SUBCOMMANDS: tuple[str, ...] = (*LIFECYCLE_COMMANDS, "status", "help")
VOTE_WORDS: dict[str, str] = {
    "approve": APPROVE, "request-changes": REQUEST_CHANGES, "request_changes": REQUEST_CHANGES,
    "reject": REJECT, "abstain": ABSTAIN, "retract": RETRACT,
}
VOTE_USAGE = "/vote approve|request-changes|reject|abstain [reason], /vote retract"
MAX_COMMANDS = 20
MAX_ARGUMENT = 200

_COMMAND = re.compile(r"^ {0,3}/(rfc|vote)(?=\s|$)(.*)$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^\w .-]")
_UNSAFE_TOKEN = re.compile(r"[^\w .:/+-]")


@dataclass(frozen=True)
class Command:
    """One command line. ``name`` is the subcommand (``open``) or vote option (``approve``)."""

    kind: str  # "rfc" | "vote"
    name: str
    argument: str = ""
    line: str = ""  # the line as written, for quoting it back
    line_no: int = 0
    error: str | None = None
    duration: timedelta | None = None

    @property
    def key(self) -> str:
        """Identifies the command within its comment (stable across unrelated edits)."""
        return f"{self.kind}:{self.name}:{self.argument.lower()}"


def parse_commands(body: str) -> list[Command]:
    """Every command in a comment body, in order; malformed ones carry ``error``."""
    found: list[Command] = []
    for number, line in command_lines(body):
        match = _COMMAND.match(line)
        if not match:
            continue
        if len(found) >= MAX_COMMANDS:
            found.append(Command("rfc", "", line=line.strip(), line_no=number,
                                 error=f"at most {MAX_COMMANDS} commands per comment are read"))
            break
        kind = match.group(1).lower()
        rest = match.group(2).strip()
        found.append(_parse_rfc(rest, line.strip(), number) if kind == "rfc"
                     else _parse_vote(rest, line.strip(), number))
    return found


def _split(rest: str) -> tuple[str, str]:
    head, _, tail = rest.partition(" ")
    return head.strip().lower().rstrip(".,;:!"), " ".join(tail.split())[:MAX_ARGUMENT]


def _parse_rfc(rest: str, line: str, number: int) -> Command:
    name, argument = _split(rest)
    if not name:
        return Command("rfc", "", line=line, line_no=number,
                       error="`/rfc` needs a subcommand")
    if name not in RFC_SUBCOMMANDS:
        return Command("rfc", name, argument, line, number,
                       error=f"`/rfc {shown(name)}` is not a command")
    if name == "extend":
        if not argument:
            return Command("rfc", name, argument, line, number,
                           error='`/rfc extend` needs a duration, like "/rfc extend 7d"')
        try:
            duration = parse_duration(argument.split()[0])
        except CvfError:
            return Command("rfc", name, argument, line, number,
                           error=f'expected a duration like "7d", got "{shown(argument)}"')
        if duration <= timedelta(0):
            return Command("rfc", name, argument, line, number,
                           error="the duration must be longer than zero")
        return Command("rfc", name, argument.split()[0].lower(), line, number,
                       duration=duration)
    if name in ("concern", "resolve"):
        concern = concern_name(argument)
        if not concern:
            return Command("rfc", name, "", line, number,
                           error=f'`/rfc {name}` needs a concern name, like "/rfc {name} '
                                 f'naming"')
        return Command("rfc", name, concern, line, number)
    return Command("rfc", name, argument, line, number)


def _parse_vote(rest: str, line: str, number: int) -> Command:
    word, reason = _split(rest)
    if not word:
        return Command("vote", "", line=line, line_no=number,
                       error=f"`/vote` needs an option: {VOTE_USAGE}")
    option = VOTE_WORDS.get(word)
    if option is None:
        return Command("vote", word, reason, line, number,
                       error=f"`/vote {shown(word)}` is not a vote option; use {VOTE_USAGE}")
    return Command("vote", option, reason, line, number)


def concern_name(text: str) -> str:
    """Concern names are matched case-insensitively and without extra spaces; only
    letters, digits, spaces, ``-``, ``_`` and ``.`` are kept, so a name is safe to show."""
    return " ".join(_UNSAFE.sub("", text.lower()).split())[:80]


def shown(token: str) -> str:
    """A user's token quoted in an error message: nothing that could mention or markup."""
    return _UNSAFE_TOKEN.sub("?", token)[:40]
