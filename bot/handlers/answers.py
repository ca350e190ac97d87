"""The bot's answers to people, bounded per person so nobody can flood a thread through it.

Every refused or malformed command deserves an answer, but one person writing 10,000 of
them must not make the bot write 10,000 comments (each a write against the
installation's rate limit, and noise for everyone on the pull request). So:

- all answers due to one person in one run **coalesce** into one comment (at most
  ``QUOTED`` commands quoted, the rest counted);
- each person gets at most ``BUDGET`` answer comments per thread; the next answer due
  is replaced by **one** summarising comment, and after that their refusals are still
  recorded (the status comment shows the RFC's state) but not answered one by one.

Everything is recounted from the thread itself (GitHub is the source of truth): an
answer carries a hidden marker per command it answers, so a redelivered event or a
second worker finds them and writes nothing twice.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from bot.github.port import Comment, GitHubPort
from bot.markdown import mention

BUDGET = 5  # answer comments per person per thread
QUOTED = 10  # commands answered in one comment
_MARK = re.compile(r"<!-- cvf:[a-z-]+:[^>]*-->")
_ANSWER_OF = re.compile(r"<!-- cvf:rfc-(?:reply|help|vote|not-rfc):(\d+)[:\s]")


def quiet_marker(login: str) -> str:
    return f"<!-- cvf:rfc-quiet:{login.lower()} -->"


@dataclass
class _Due:
    marker: str
    text: str


@dataclass
class Answers:
    """Answers due in one run, written by ``flush`` within each person's budget."""

    gh: GitHubPort
    number: int
    comments: list[Comment]
    own: list[Comment]  # the bot's own comments in the thread
    due: dict[str, list[_Due]] = field(default_factory=dict)
    written: int = 0

    def __post_init__(self) -> None:
        self.authors = {c.id: c.author for c in self.comments}
        self.marks = {m for c in self.own for m in _MARK.findall(c.body)}
        self.used: Counter[str] = Counter()
        for comment in self.own:
            first = _ANSWER_OF.search(comment.body)
            author = self.authors.get(int(first.group(1))) if first else None
            if author:
                self.used[author.lower()] += 1

    def answered(self, marker: str) -> bool:
        return marker in self.marks

    def add(self, author: str, marker: str, text: str) -> None:
        """Queue an answer to ``author`` (nothing if ``marker`` was answered already)."""
        if self.answered(marker) or any(d.marker == marker for d in self.due.get(author, [])):
            return
        self.due.setdefault(author, []).append(_Due(marker, text))

    def flush(self) -> None:
        """One comment per person with answers due, or their one summary, or nothing."""
        for author, items in self.due.items():
            if self.used[author.lower()] >= BUDGET:
                marker = quiet_marker(author)
                if not self.answered(marker):
                    self._write(marker, self._summary(author, len(items)))
                continue
            shown, rest = items[:QUOTED], len(items) - QUOTED
            # Every answered command's marker is in the comment, so none is answered twice.
            missing = [d.marker for d in shown if d.marker not in d.text]
            text = "\n".join(missing) + ("\n" if missing else "")
            text += "\n\n---\n\n".join(d.text.strip("\n") for d in shown) + "\n"
            if rest > 0:
                text += (f"\n{rest} more of your commands here were not done either; "
                         "they are not quoted one by one.\n")
            self._write(shown[0].marker, text)
            self.used[author.lower()] += 1
        self.due.clear()

    def _summary(self, author: str, count: int) -> str:
        return (f"{mention(author)}: this bot has answered you {BUDGET} times on this pull "
                f"request, so it stops answering your commands one by one here "
                f"({count} more were not done just now). Commands you may not use are "
                "still refused and recorded; `/rfc help` lists who may use which, and the "
                "status comment shows where the RFC stands.\n")

    def _write(self, marker: str, text: str) -> None:
        # Posted as a sticky comment: two workers answering the same command at once
        # (GitHub redelivering while the first is still busy) converge on one comment.
        body = text if text.startswith(marker) else f"{marker}\n{text}"
        self.gh.upsert_sticky_comment(self.number, marker, body)
        self.marks.add(marker)
        self.marks.update(_MARK.findall(text))
        self.written += 1
