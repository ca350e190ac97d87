"""A valid RFC document for tests and benchmarks: front matter and the five sections the
linter asks for."""

from __future__ import annotations

SECTIONS = ("Summary", "Motivation", "Design", "Drawbacks", "Alternatives")


def rfc_text(number: int = 5, *, title: str = "Shared vocabulary", status: str = "draft",
             author: str = "writer", extra: str = "") -> str:
    """``extra`` is more front matter, one ``key: value`` line each, ending in a newline."""
    body = "\n\n".join(f"## {name}\n\nSome real words about {name.lower()}." for name in SECTIONS)
    return (f"---\nrfc: {number}\ntitle: {title}\ntype: standard\nstatus: {status}\n"
            f"authors: [{author}]\ncreated: 2026-03-01\n{extra}---\n\n{body}\n")
