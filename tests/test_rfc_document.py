"""Reading RFC files: typed fields, real line numbers, clear errors, front-matter rewrites."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bot.errors import InputError
from bot.rfc.document import (
    MAX_BYTES,
    DocumentError,
    load_rfc,
    parse_rfc,
    rfc_files,
    slugify,
    update_front_matter,
)

GOOD = """---
rfc: 7
title: Add Multi-Agent Routing
type: capability_proposal
status: open_for_comment
authors: [alice, bob]  # both wrote it
created: 2026-11-20
discussion: https://github.com/acme/governance/pull/12
comment_period_ends: 2026-12-04T17:00:00Z
requires: [3]
---

Intro paragraph.

## Summary

Route work to agents.

```markdown
## Not a heading, inside a fence
```

## Motivation

Because.
"""


def test_typed_fields_and_lines():
    doc = parse_rfc(GOOD, path="rfcs/0007-add-multi-agent-routing.md")
    assert doc.number == 7
    assert doc.title == "Add Multi-Agent Routing"
    assert doc.type == "capability_proposal"
    assert doc.status == "open_for_comment"
    assert doc.authors == ("alice", "bob")
    assert doc.created == date(2026, 11, 20)
    assert doc.comment_period_ends == datetime(2026, 12, 4, 17, tzinfo=UTC)
    assert doc.discussion == "https://github.com/acme/governance/pull/12"
    assert doc.requires == (3,)
    assert doc.supersedes == () and doc.decision is None
    # Lines are counted in the whole file, front matter included.
    assert doc.line_of("created") == 7
    assert doc.line_of("requires", 0) == 10
    assert doc.front_matter_end == 11 and doc.body_line == 12
    assert [(h.text, h.line) for h in doc.headings] == [("Summary", 15), ("Motivation", 23)]
    assert doc.section_text(doc.headings[0]).strip().startswith("Route work to agents.")


def test_quoted_dates_are_accepted_and_malformed_values_are_none():
    doc = parse_rfc('---\nrfc: "7"\ncreated: "2026-01-02"\ncomment_period_ends: 2026-01-02\n'
                    "authors: alice\n---\n")
    assert doc.number is None  # a string is not a number; lint says so
    assert doc.created == date(2026, 1, 2)
    assert doc.comment_period_ends is None  # a date is not an instant
    assert doc.authors == ("alice",)


def test_decision_is_typed():
    doc = parse_rfc("---\ndecision:\n  date: 2026-12-10\n  deciders: [carol, dan]\n"
                    "  tally: {approve: 3, reject: 1}\n  reason: ok\n---\n")
    assert doc.decision is not None
    assert doc.decision.date == date(2026, 12, 10)
    assert doc.decision.deciders == ("carol", "dan")
    assert doc.decision.tally == {"approve": 3, "reject": 1}


@pytest.mark.parametrize(("text", "message", "line"), [
    ("", "file is empty", 1),
    ("  \n\n", "file is empty", 1),
    ("# Just markdown\n", "no front matter", 1),
    ("---\ntitle: x\n", "front matter is not closed", 1),
    ("---\n---\nbody\n", "front matter is empty", 1),
    ("---\n- rfc: 1\n- title: x\n---\n", "must be a mapping of fields, got a list", 2),
    ("---\nrfc: 1\ntitle: [unclosed\nstatus: draft\n---\n", "invalid YAML", 4),
    ("---\nrfc: 1\n  title: bad indent\n---\n", "invalid YAML", 3),
])
def test_bad_structure_is_a_clear_error_with_the_line(text, message, line):
    with pytest.raises(DocumentError) as info:
        parse_rfc(text, path="rfcs/0001-x.md")
    assert message in info.value.message
    assert info.value.where == f"rfcs/0001-x.md:{line}"
    assert info.value.hint


def test_binary_file_is_refused(tmp_path):
    file = tmp_path / "0001-x.md"
    file.write_bytes(b"---\nrfc: 1\n---\n\x89PNG\x00\x00")
    with pytest.raises(DocumentError, match="not a text file") as info:
        load_rfc(file, display="rfcs/0001-x.md")
    assert info.value.where == "rfcs/0001-x.md:4"


def test_non_utf8_file_is_refused(tmp_path):
    file = tmp_path / "0001-x.md"
    file.write_bytes(b"---\ntitle: caf\xe9\n---\n")
    with pytest.raises(DocumentError, match="not UTF-8"):
        load_rfc(file)


def test_huge_file_is_refused_without_reading_it_all(tmp_path):
    file = tmp_path / "0001-x.md"
    file.write_bytes(b"---\nrfc: 1\n---\n" + b"a" * (5 * 1024 * 1024))
    with pytest.raises(DocumentError, match=r"too large \(5\.2 MB\)"):
        load_rfc(file)
    assert MAX_BYTES < 5 * 1024 * 1024


def test_bom_and_crlf_are_read():
    doc = parse_rfc("\ufeff---\r\nrfc: 3\r\ntitle: T\r\n---\r\n## Summary\r\n")
    assert doc.number == 3 and doc.title == "T"
    assert doc.headings[0].text == "Summary"


def test_rfc_files_skip_index_and_template(tmp_path):
    for name in ("README.md", "0000-template.md", "0002-b.md", "0001-a.md", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in rfc_files(tmp_path)] == ["0001-a.md", "0002-b.md"]
    assert rfc_files(tmp_path / "missing") == []


def test_slugify():
    assert slugify("Add Multi-Agent Routing") == "add-multi-agent-routing"
    assert slugify("  C++ & Rust: 2.0!  ") == "c-rust-2-0"
    assert slugify("!!!") == "untitled"
    assert slugify("Über Café Routing") == "uber-cafe-routing"
    assert len(slugify("word " * 40)) <= 60


def test_update_keeps_order_comments_and_body():
    updated = update_front_matter(GOOD, {"status": "review"})
    assert updated == GOOD.replace("status: open_for_comment", "status: review")


def test_update_inserts_in_canonical_order_and_removes():
    text = ("---\nrfc: 1\ntitle: T\nstatus: draft\nauthors:\n  - alice\n"
            "created: 2026-01-01\n---\nB\n")
    out = update_front_matter(text, {
        "status": "accepted",
        "decision": {"date": date(2026, 2, 1), "deciders": ["carol"],
                     "tally": {"approve": 2, "reject": 0}, "reason": "Agreed: ship it"},
        "comment_period_ends": datetime(2026, 1, 15, 17, tzinfo=UTC),
        "authors": None,
    })
    assert out == ("---\nrfc: 1\ntitle: T\nstatus: accepted\ncreated: 2026-01-01\n"
                   "comment_period_ends: 2026-01-15T17:00:00Z\n"
                   "decision:\n  date: 2026-02-01\n  deciders: [carol]\n"
                   "  tally:\n    approve: 2\n    reject: 0\n"
                   '  reason: "Agreed: ship it"\n---\nB\n')
    doc = parse_rfc(out)
    assert doc.decision is not None and doc.decision.reason == "Agreed: ship it"


def test_update_keeps_crlf_and_bom():
    text = "\ufeff---\r\nrfc: 1\r\nstatus: draft\r\n---\r\nbody\r\n"
    out = update_front_matter(text, {"status": "review", "discussion": "https://x/pull/1"})
    assert out == ("\ufeff---\r\nrfc: 1\r\nstatus: review\r\n"
                   "discussion: https://x/pull/1\r\n---\r\nbody\r\n")


def test_update_refuses_a_document_without_front_matter():
    with pytest.raises(InputError):
        update_front_matter("no front matter\n", {"status": "review"})


def test_update_refuses_a_flow_style_front_matter_clearly():
    with pytest.raises(InputError, match="not written as one `field: value` line"):
        update_front_matter("---\n{rfc: 1, status: draft}\n---\n", {"title": "T"})


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=30)


@settings(max_examples=60, deadline=None)
@given(title=_text, reason=_text, body=st.text(max_size=200))
def test_update_round_trips_any_string_and_never_touches_the_body(title, reason, body):
    text = "---\nrfc: 1\ntitle: x\nstatus: draft\n---\n" + body
    out = update_front_matter(text, {"title": title, "decision": {"reason": reason}})
    doc = parse_rfc(out)
    assert doc.meta["title"] == title
    assert doc.meta["decision"] == {"reason": reason}
    assert out.endswith("---\n" + body)


_leaf = st.one_of(st.integers(0, 99), st.text(max_size=10), st.booleans(),
                  st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
_value = st.one_of(_leaf, st.lists(_leaf, max_size=3),
                   st.dictionaries(st.sampled_from(["date", "deciders", "tally"]), _leaf,
                                   min_size=1, max_size=3))
_names = st.sampled_from(["rfc", "title", "type", "status", "authors", "created", "decision",
                          "comment_period_ends", "requires", "extra"])


@settings(max_examples=100, deadline=None)
@given(start=st.dictionaries(_names, _value, max_size=6),
       changes=st.dictionaries(_names, st.one_of(st.none(), _value), min_size=1, max_size=4),
       flow=st.booleans())
def test_update_matches_a_plain_dict_update(start, changes, flow):
    import yaml

    def line(key: str, value: object) -> str:
        if not flow:
            return yaml.safe_dump({key: value}, default_flow_style=False, allow_unicode=True)
        dumped = yaml.safe_dump(value, default_flow_style=True, width=1 << 30)
        return f"{key}: {dumped.removesuffix(chr(10) + '...' + chr(10)).strip()}\n"

    assume(start and {k: v for k, v in {**start, **changes}.items() if v is not None})
    text = "---\n" + "".join(line(k, v) for k, v in start.items()) + "---\n\nbody\n"
    # Compare with what YAML itself reads from the text (it folds e.g. NEL to a space).
    expected = {**parse_rfc(text).meta, **changes}
    expected = {k: v for k, v in expected.items() if v is not None}
    out = update_front_matter(text, changes)
    assert parse_rfc(out).meta == expected
    assert out.endswith("---\n\nbody\n")
    kept = [k for k in start if k in expected]
    assert [k for k in parse_rfc(out).meta if k in kept] == kept  # order of old fields kept
