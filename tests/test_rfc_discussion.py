"""Discussion tracking: counts, participants, review threads and which wait for an author."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.github.port import Comment, ReviewComment
from bot.rfc.discussion import summarize

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PATH = "rfcs/0005-thing.md"


def rc(id, author, in_reply_to=None, path=PATH, body="question?"):
    return ReviewComment(id, author, body, path, in_reply_to, T0 + timedelta(minutes=id))


def ic(id, author, bot=False):
    t = T0 + timedelta(minutes=id)
    return Comment(id, author, "text", t, t, author_is_bot=bot)


def test_threads_answered_only_by_an_author():
    review = [rc(1, "reviewer"), rc(2, "other", 1), rc(3, "reviewer2"), rc(4, "Writer", 3),
              rc(5, "x", path="README.md"), rc(6, "writer")]
    d = summarize([ic(10, "reviewer"), ic(11, "cvf-governance[bot]", bot=True)], review,
                  rfc_path=PATH, authors=["writer"], is_bot=lambda u: u.endswith("[bot]"))
    assert d.comment_count == 1 and d.review_comment_count == 6
    assert [t.root_id for t in d.threads] == [1, 3, 6]
    assert [t.root_id for t in d.unanswered] == [1]
    assert d.unanswered[0].replies == 1
    assert d.participants == ["other", "reviewer", "reviewer2", "Writer", "x"]


def test_reply_to_a_reply_joins_the_root_thread():
    d = summarize([], [rc(1, "a"), rc(2, "b", 1), rc(3, "c", 2)], rfc_path=PATH,
                  authors=["c"], is_bot=lambda u: False)
    assert len(d.threads) == 1 and d.threads[0].answered and d.threads[0].replies == 2
