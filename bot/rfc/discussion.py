"""The discussion around an RFC, not only its votes: who talks, and which questions wait.

A review thread is a review comment on the RFC file plus its replies (GitHub points every
reply's ``in_reply_to_id`` at the thread's first comment). A thread in which no RFC
author has written is "unanswered"; config can make acceptance wait for those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Thread:
    root_id: int
    path: str
    started_by: str
    excerpt: str
    created_at: datetime
    participants: tuple[str, ...]
    replies: int
    answered: bool


@dataclass
class Discussion:
    comment_count: int
    review_comment_count: int
    participants: list[str]
    threads: list[Thread] = field(default_factory=list)

    @property
    def unanswered(self) -> list[Thread]:
        return [t for t in self.threads if not t.answered]


def summarize(comments: Iterable[Any], review_comments: Iterable[Any], *, rfc_path: str | None,
              authors: Iterable[str], is_bot: Callable[[str], bool]) -> Discussion:
    """``comments`` are issue comments (author, body), ``review_comments`` carry
    id, author, body, path, in_reply_to_id, created_at."""
    author_set = {a.lower() for a in authors}
    people: dict[str, str] = {}
    count = 0
    for comment in comments:
        if is_bot(comment.author) or getattr(comment, "author_is_bot", False):
            continue
        count += 1
        people.setdefault(comment.author.lower(), comment.author)
    review_list = [c for c in review_comments if not is_bot(c.author)]
    for comment in review_list:
        people.setdefault(comment.author.lower(), comment.author)
    by_id = {c.id: c for c in review_list}
    roots: dict[int, list[Any]] = {}
    for comment in sorted(review_list, key=lambda c: (c.created_at, c.id)):
        root = comment.id if comment.in_reply_to_id is None else _root_of(comment, by_id)
        roots.setdefault(root, []).append(comment)
    threads = []
    for root_id, members in roots.items():
        first = by_id.get(root_id, members[0])
        if rfc_path is not None and first.path != rfc_path:
            continue
        writers = tuple(dict.fromkeys(m.author for m in members))
        answered = any(w.lower() in author_set for w in writers)
        excerpt = " ".join(first.body.split())
        threads.append(Thread(root_id=root_id, path=first.path, started_by=first.author,
                              excerpt=excerpt[:120] + ("…" if len(excerpt) > 120 else ""),
                              created_at=first.created_at, participants=writers,
                              replies=len(members) - 1, answered=answered))
    threads.sort(key=lambda t: (t.created_at, t.root_id))
    return Discussion(comment_count=count, review_comment_count=len(review_list),
                      participants=sorted(people.values(), key=str.lower), threads=threads)


def _root_of(comment: Any, by_id: dict[int, Any]) -> int:
    """Follow replies up to the first comment (defensive: GitHub already points at it)."""
    seen = set()
    current = comment
    while current.in_reply_to_id is not None and current.in_reply_to_id not in seen:
        seen.add(current.in_reply_to_id)
        parent = by_id.get(current.in_reply_to_id)
        if parent is None:
            return int(current.in_reply_to_id)
        current = parent
    return int(current.id)
