"""The lint rules, one function each, registered against a stable rule id.

Ids never change meaning once published (people silence and search for them, as with
eipw's rule names); a retired rule keeps its id unused. Each rule reports through a
``Reporter`` so the rule itself stays a few lines of plain checks.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.rfc.document import (
    DECISION_FIELDS,
    FIELDS,
    STATUSES,
    RfcDocument,
    as_date,
    as_timestamp,
    slugify,
)


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str  # "error" fails the lint; "warning" is reported only
    summary: str


RULES: tuple[Rule, ...] = (
    Rule("RFC-000", "readable", "error", "the file is UTF-8 text, not empty, at most 1 MiB"),
    Rule("RFC-001", "front-matter", "error",
         "the file starts with a `---` block holding a YAML mapping of fields"),
    Rule("RFC-002", "required", "error",
         "rfc, title, type, status, authors and created are present"),
    Rule("RFC-003", "unknown-field", "error", "no field outside the documented ones"),
    Rule("RFC-004", "field-type", "error",
         "each field has the right kind of value (number, text, list of logins...)"),
    Rule("RFC-005", "type", "error", "type is one of rfc.types in the config"),
    Rule("RFC-006", "status", "error", "status is one of the lifecycle states"),
    Rule("RFC-007", "date", "error",
         "dates are YYYY-MM-DD; comment_period_ends is a UTC time YYYY-MM-DDTHH:MM:SSZ"),
    Rule("RFC-008", "status-fields", "error",
         "the fields a status needs are there, and the ones it cannot have are not"),
    Rule("RFC-009", "discussion", "error", "discussion is the URL of a pull request or issue"),
    Rule("RFC-010", "file-name", "error",
         "the file is named NNNN-slug.md and NNNN is its rfc number"),
    Rule("RFC-011", "slug", "warning", "the file name's slug matches the title"),
    Rule("RFC-012", "unique-number", "error", "no two RFC files share a number"),
    Rule("RFC-013", "reference", "error",
         "supersedes, superseded_by and requires name existing RFCs other than itself"),
    Rule("RFC-014", "reference-pair", "warning",
         "supersedes and superseded_by agree on both sides"),
    Rule("RFC-015", "one-per-file", "error", "a file holds exactly one RFC"),
    Rule("RFC-016", "sections", "error",
         "the body has the template's required `##` sections"),
    Rule("RFC-017", "section-order", "warning", "required sections follow the template's order"),
    Rule("RFC-018", "section-empty", "error", "required sections are not empty"),
    Rule("RFC-019", "duplicate-field", "error", "each front-matter field appears once"),
)
RULE_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}

REQUIRED_FIELDS: tuple[str, ...] = ("rfc", "title", "type", "status", "authors", "created")
REQUIRED_SECTIONS: tuple[str, ...] = ("Summary", "Motivation", "Design", "Drawbacks",
                                      "Alternatives")
MAX_TITLE = 100
UNDECIDED = ("draft", "open_for_comment", "review")
DECIDED = ("accepted", "rejected")
NEEDS_PERIOD = ("open_for_comment", "review")
REFERENCE_FIELDS = ("supersedes", "superseded_by", "requires")
VOTES = ("approve", "request_changes", "reject", "abstain")

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(\[bot\])?$")
_FILE_NAME = re.compile(r"^(\d{4,})-([a-z0-9]+(?:-[a-z0-9]+)*)\.md$")
_DISCUSSION = re.compile(r"^https://[^/\s]+/[^/\s]+/[^/\s]+/(pull|issues|discussions)/\d+/?$")
_SECOND_FRONT_MATTER = re.compile(r"^---[ \t]*\r?\n(?:[ \t]*(?:#[^\n]*)?\r?\n)*rfc[ \t]*:",
                                  re.MULTILINE)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_EXAMPLES = {
    "rfc": "rfc: 12", "title": "title: Add multi-agent routing", "type": "type: standard",
    "status": "status: draft", "authors": "authors: [your-github-login]",
    "created": "created: YYYY-MM-DD",
}


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int
    column: int
    message: str
    hint: str | None = None


class Reporter:
    """Collects findings for one document, placing them at a key path or a line."""

    def __init__(self, doc: RfcDocument):
        self.doc = doc
        self.findings: list[Finding] = []

    def at(self, rule: str, key: tuple[str | int, ...], message: str,
           hint: str | None = None) -> None:
        line = self.doc.line_of(*key) if key else 1
        column = self.doc.column_of(*key) if key else 1
        self.findings.append(Finding(rule, line, column, message, hint))

    def at_line(self, rule: str, line: int, message: str, hint: str | None = None,
                column: int = 1) -> None:
        self.findings.append(Finding(rule, line, column, message, hint))


@dataclass(frozen=True)
class LintContext:
    types: tuple[str, ...]
    #: rfc number -> display paths of every file (checked or not) that claims it
    numbers: dict[int, tuple[str, ...]]
    #: rfc number -> its document, for cross-reference checks
    by_number: dict[int, RfcDocument]


DocumentRule = Callable[[RfcDocument, LintContext, Reporter], None]
DOCUMENT_RULES: list[DocumentRule] = []


def document_rule(func: DocumentRule) -> DocumentRule:
    DOCUMENT_RULES.append(func)
    return func


def check_document(doc: RfcDocument, ctx: LintContext) -> list[Finding]:
    reporter = Reporter(doc)
    for rule in DOCUMENT_RULES:
        rule(doc, ctx, reporter)
    return reporter.findings


def build_context(docs: Iterable[RfcDocument], types: Sequence[str]) -> LintContext:
    numbers: dict[int, list[str]] = defaultdict(list)
    by_number: dict[int, RfcDocument] = {}
    for doc in docs:
        if doc.number is not None:
            numbers[doc.number].append(doc.path)
            by_number.setdefault(doc.number, doc)
    return LintContext(types=tuple(types), numbers={k: tuple(v) for k, v in numbers.items()},
                       by_number=by_number)


def _suggest(value: Any, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(value), list(options), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


def _shown(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- front matter ---------------------------------------------------------------------
@document_rule
def required_fields(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    for name in REQUIRED_FIELDS:
        if doc.meta.get(name) is None:
            state = "is empty" if name in doc.meta else "is missing"
            key = (name,) if name in doc.meta else ()
            out.at("RFC-002", key, f"required field '{name}' {state}",
                   f"add `{_EXAMPLES[name]}` to the front matter")


@document_rule
def duplicate_fields(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    first: dict[str, int] = {}
    for name, line in doc.field_lines:
        if name in first:
            out.at_line("RFC-019", line, f"field '{name}' appears again (first on line "
                                         f"{first[name]}); only the last one counts",
                        "keep one of them")
        else:
            first[name] = line


@document_rule
def unknown_fields(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    for key in doc.meta:
        if key not in FIELDS:
            out.at("RFC-003", (str(key),), f"unknown field '{key}'",
                   _suggest(key, FIELDS) + f"known fields: {', '.join(FIELDS)}")
    decision = doc.meta.get("decision")
    if isinstance(decision, dict):
        for key in decision:
            if key not in DECISION_FIELDS:
                out.at("RFC-003", ("decision", str(key)), f"unknown field 'decision.{key}'",
                       _suggest(key, DECISION_FIELDS)
                       + f"decision fields: {', '.join(DECISION_FIELDS)}")


def _check_logins(out: Reporter, key: tuple[str, ...], value: Any, what: str) -> None:
    if isinstance(value, str):
        out.at("RFC-004", key, f"{what} must be a list of GitHub logins, got a single text",
               f"write `{key[-1]}: [{value.lstrip('@')}]`")
        return
    if not isinstance(value, list) or not value:
        out.at("RFC-004", key, f"{what} must be a non-empty list of GitHub logins, "
                               f"got {_shown(value)}", f"write `{key[-1]}: [login1, login2]`")
        return
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _LOGIN.match(item):
            fix = f"write '{item[1:]}' without the @" if isinstance(item, str) and \
                item.startswith("@") else "a GitHub login is letters, digits and dashes"
            out.at("RFC-004", (*key, index), f"{what}: {_shown(item)} is not a GitHub login", fix)
        elif item.lower() in seen:
            out.at("RFC-004", (*key, index), f"{what}: '{item}' is listed twice",
                   "remove the duplicate")
        else:
            seen.add(item.lower())


@document_rule
def field_types(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    meta = doc.meta
    number = meta.get("rfc")
    if number is not None and (not _is_int(number) or number < 1):
        out.at("RFC-004", ("rfc",), f"rfc must be a whole number from 1, got {_shown(number)}",
               "write the number without quotes or zeros in front, e.g. `rfc: 12`")
    title = meta.get("title")
    if title is not None:
        if not isinstance(title, str) or not title.strip():
            out.at("RFC-004", ("title",), f"title must be text, got {_shown(title)}",
                   "quote the title if it looks like a number or date")
        elif "\n" in title.strip() or len(title.strip()) > MAX_TITLE:
            out.at("RFC-004", ("title",), f"title must be one line of at most {MAX_TITLE} "
                                          f"characters", "shorten it; details go in the Summary")
    for name in ("type", "status", "discussion"):
        value = meta.get(name)
        if value is not None and not isinstance(value, str):
            out.at("RFC-004", (name,), f"{name} must be text, got {_shown(value)}")
    if meta.get("authors") is not None:
        _check_logins(out, ("authors",), meta["authors"], "authors")
    for name in REFERENCE_FIELDS:
        value = meta.get(name)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if not _is_int(item) or item < 1:
                key = (name, index) if isinstance(value, list) else (name,)
                out.at("RFC-004", key, f"{name} must list RFC numbers, got {_shown(item)}",
                       f"write `{name}: [3]` with the number of the other RFC")
    decision = meta.get("decision")
    if decision is None:
        return
    if not isinstance(decision, dict):
        out.at("RFC-004", ("decision",), f"decision must be a mapping, got {_shown(decision)}",
               "write `decision:` then indented `date:` and `deciders:` lines")
        return
    if decision.get("deciders") is not None:
        _check_logins(out, ("decision", "deciders"), decision["deciders"], "decision.deciders")
    tally = decision.get("tally")
    if tally is not None:
        if not isinstance(tally, dict):
            out.at("RFC-004", ("decision", "tally"), "decision.tally must map votes to counts",
                   "e.g. `tally: {approve: 4, reject: 1}`")
        else:
            for vote, count in tally.items():
                if vote not in VOTES:
                    out.at("RFC-004", ("decision", "tally", str(vote)),
                           f"decision.tally: unknown vote '{vote}'",
                           _suggest(vote, VOTES) + f"votes are {', '.join(VOTES)}")
                elif not _is_int(count) or count < 0:
                    out.at("RFC-004", ("decision", "tally", str(vote)),
                           f"decision.tally.{vote} must be a count, got {_shown(count)}")
    for name in ("reason", "url"):
        value = decision.get(name)
        if value is not None and not isinstance(value, str):
            out.at("RFC-004", ("decision", name), f"decision.{name} must be text")


@document_rule
def type_enum(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    value = doc.meta.get("type")
    if isinstance(value, str) and value not in ctx.types:
        out.at("RFC-005", ("type",), f"type '{value}' is not one of: {', '.join(ctx.types)}",
               _suggest(value, ctx.types) + "types are set by rfc.types in .github/cvf.yml")


@document_rule
def status_enum(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    value = doc.meta.get("status")
    if isinstance(value, str) and value not in STATUSES:
        out.at("RFC-006", ("status",), f"status '{value}' is not one of: {', '.join(STATUSES)}",
               _suggest(value, STATUSES) + "new RFCs start as `status: draft`")


@document_rule
def dates(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    created = doc.meta.get("created")
    if created is not None and as_date(created) is None:
        out.at("RFC-007", ("created",), f"created must be a date YYYY-MM-DD, got {_shown(created)}",
               "e.g. `created: 2026-01-31`")
    decision = doc.meta.get("decision")
    if isinstance(decision, dict) and decision.get("date") is not None \
            and as_date(decision["date"]) is None:
        out.at("RFC-007", ("decision", "date"),
               f"decision.date must be a date YYYY-MM-DD, got {_shown(decision['date'])}")
    ends = doc.meta.get("comment_period_ends")
    if ends is not None and as_timestamp(ends) is None:
        why = ""
        if isinstance(ends, datetime) and ends.utcoffset() is None:
            why = " (no time zone)"
        elif isinstance(ends, datetime):
            why = " (not UTC)"
        elif isinstance(ends, date):
            why = " (a date without a time)"
        out.at("RFC-007", ("comment_period_ends",),
               f"comment_period_ends must be a UTC time, got {_shown(ends)}{why}",
               "write it like `comment_period_ends: 2026-12-09T17:00:00Z`")


@document_rule
def status_fields(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    status = doc.status
    if status not in STATUSES:
        return
    meta = doc.meta
    if status in NEEDS_PERIOD and meta.get("comment_period_ends") is None:
        out.at("RFC-008", ("status",), f"status {status} needs comment_period_ends",
               "add `comment_period_ends: <UTC time>`; the bot writes it when the period opens")
    if status == "draft" and meta.get("comment_period_ends") is not None:
        out.at("RFC-008", ("comment_period_ends",),
               "a draft has no comment period yet", "remove comment_period_ends or change status")
    if status != "draft" and not meta.get("discussion"):
        out.at("RFC-008", ("status",), f"status {status} needs discussion (the pull request URL)",
               "add `discussion: https://github.com/OWNER/REPO/pull/N`")
    decision = meta.get("decision")
    if status in UNDECIDED and decision is not None:
        out.at("RFC-008", ("decision",), f"an RFC in {status} has no decision yet",
               "remove decision, or set the status the decision reached")
    if status in DECIDED:
        if decision is None:
            out.at("RFC-008", ("status",), f"status {status} needs a decision with date and "
                                           f"deciders",
                   "add `decision:` with indented `date: YYYY-MM-DD` and `deciders: [login]`")
        elif isinstance(decision, dict):
            for name in ("date", "deciders"):
                if decision.get(name) is None:
                    out.at("RFC-008", ("decision",), f"decision needs {name} when {status}",
                           f"add `{name}:` under decision")


@document_rule
def discussion_url(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    value = doc.meta.get("discussion")
    if isinstance(value, str) and value and not _DISCUSSION.match(value):
        out.at("RFC-009", ("discussion",), f"discussion must be a pull request or issue URL, "
                                           f"got {_shown(value)}",
               "e.g. `discussion: https://github.com/OWNER/REPO/pull/42`")


@document_rule
def file_name(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    name = doc.file_name
    match = _FILE_NAME.match(name)
    expected = (f"{doc.number:04d}-{slugify(doc.title)}.md"
                if doc.number is not None and doc.title else "NNNN-short-title.md")
    if not match:
        out.at_line("RFC-010", 1, f"file name '{name}' is not NNNN-slug.md",
                    f"rename it to {expected}")
        return
    if doc.number is not None and int(match.group(1)) != doc.number:
        out.at("RFC-010", ("rfc",), f"file name says RFC {int(match.group(1))} but rfc is "
                                    f"{doc.number}", f"rename it to {expected} or fix `rfc:`")
    if doc.title and match.group(2) != slugify(doc.title):
        out.at("RFC-011", ("title",), f"file name slug '{match.group(2)}' does not match the "
                                      f"title (expected '{slugify(doc.title)}')",
               f"rename it to {expected}")


@document_rule
def unique_number(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    if doc.number is None:
        return
    others = [p for p in ctx.numbers.get(doc.number, ()) if p != doc.path]
    if others:
        out.at("RFC-012", ("rfc",), f"RFC {doc.number} is also used by {', '.join(others)}",
               "run `cvf rfc new` for the next free number")


@document_rule
def references(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    for name in REFERENCE_FIELDS:
        value = doc.meta.get(name)
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if not _is_int(item) or item < 1:
                continue
            key = (name, index) if isinstance(value, list) else (name,)
            if item == doc.number:
                out.at("RFC-013", key, f"{name} names this RFC itself")
            elif item not in ctx.by_number:
                out.at("RFC-013", key, f"{name}: RFC {item} does not exist",
                       "check the number; only RFC files in the RFC folder count")
            else:
                _reference_pair(doc, name, item, key, ctx, out)


def _reference_pair(doc: RfcDocument, name: str, number: int, key: tuple[str | int, ...],
                    ctx: LintContext, out: Reporter) -> None:
    other = ctx.by_number[number]
    if doc.number is None:
        return
    if name == "supersedes" and doc.number not in other.superseded_by:
        out.at("RFC-014", key, f"supersedes RFC {number}, but RFC {number} does not list "
                               f"{doc.number} in superseded_by",
               f"add `superseded_by: [{doc.number}]` to {other.path}")
    if name == "superseded_by" and doc.number not in other.supersedes:
        out.at("RFC-014", key, f"superseded_by RFC {number}, but RFC {number} does not list "
                               f"{doc.number} in supersedes",
               f"add `supersedes: [{doc.number}]` to {other.path}")


# -- body -----------------------------------------------------------------------------
@document_rule
def one_per_file(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    match = _SECOND_FRONT_MATTER.search(doc.body)
    if match:
        line = doc.body_line + doc.body.count("\n", 0, match.start())
        out.at_line("RFC-015", line, "a second RFC front matter starts here",
                    "put each RFC in its own file (`cvf rfc new` gives the next number)")


@document_rule
def sections(doc: RfcDocument, ctx: LintContext, out: Reporter) -> None:
    by_name: dict[str, list[Any]] = defaultdict(list)
    for heading in doc.headings:
        by_name[heading.text.strip().rstrip(":").lower()].append(heading)
    found = []
    for name in REQUIRED_SECTIONS:
        candidates = by_name.get(name.lower(), [])
        level_two = [h for h in candidates if h.level == 2]
        if level_two:
            heading = level_two[0]
            found.append((heading.line, name))
            text = _HTML_COMMENT.sub("", doc.section_text(heading)).strip()
            if not text:
                out.at_line("RFC-018", heading.line, f"section '{name}' is empty",
                            "write it, or say why it does not apply")
        elif candidates:
            wrong = candidates[0]
            out.at_line("RFC-016", wrong.line, f"section '{name}' is a level-{wrong.level} "
                                               f"heading", f"make it `## {name}`")
        else:
            out.at_line("RFC-016", doc.body_line, f"required section '{name}' is missing",
                        f"add a `## {name}` section (see rfcs/0000-template.md)")
    order = [name for _, name in sorted(found)]
    expected = [name for name in REQUIRED_SECTIONS if name in order]
    if order != expected:
        first = next(i for i, (a, b) in enumerate(zip(order, expected, strict=True)) if a != b)
        line = next(line for line, name in found if name == order[first])
        out.at_line("RFC-017", line, f"section '{order[first]}' is out of order",
                    f"order the sections as {', '.join(REQUIRED_SECTIONS)}")
