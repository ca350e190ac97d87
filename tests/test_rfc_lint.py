"""Every lint rule with a document that breaks it and one that passes; the three outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rfc.lint import LintResult, lint_sources, lint_texts
from bot.rfc.lint_rules import RULE_BY_ID, RULES

TYPES = ("capability_proposal", "policy_change", "roadmap", "standard", "breaking_change")
BODY = ("\n## Summary\n\nS.\n\n## Motivation\n\nM.\n\n## Design\n\nD.\n\n"
        "## Drawbacks\n\nX.\n\n## Alternatives\n\nA.\n")
FIELDS = {
    "rfc": "1", "title": "Add Routing", "type": "standard", "status": "draft",
    "authors": "[alice, bob]", "created": "2026-11-20",
}


def rfc(body: str = BODY, **fields: str | None) -> str:
    """An RFC text: the valid defaults, with ``fields`` changed (None drops a field)."""
    merged: dict[str, str | None] = {**FIELDS, **fields}
    front = "".join(f"{k}: {v}\n" for k, v in merged.items() if v is not None)
    return f"---\n{front}---\n{body}"


OPEN = {"status": "open_for_comment", "comment_period_ends": "2026-12-04T17:00:00Z",
        "discussion": "https://github.com/acme/gov/pull/7"}
DECIDED = {**OPEN, "status": "accepted",
           "decision": "\n  date: 2026-12-10\n  deciders: [carol]\n  tally: {approve: 3}"}
GOOD = {"rfcs/0001-add-routing.md": rfc()}


def lint(files: dict[str, str]) -> LintResult:
    return lint_texts(files, types=TYPES)


def found(files: dict[str, str]) -> set[str]:
    return {d.rule for d in lint(files).diagnostics}


# (rule, files that break it, files that pass it)
CASES: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("RFC-000", {"rfcs/0001-add-routing.md": ""}, GOOD),
    ("RFC-000", {"rfcs/0001-add-routing.md": " \n\t\n"}, GOOD),
    ("RFC-001", {"rfcs/0001-add-routing.md": "# Add Routing\n" + BODY}, GOOD),
    ("RFC-001", {"rfcs/0001-add-routing.md": "---\n- rfc: 1\n---\n"}, GOOD),
    ("RFC-001", {"rfcs/0001-add-routing.md": "---\ntitle: 'unclosed\n---\n"}, GOOD),
    ("RFC-002", {"rfcs/0001-add-routing.md": rfc(created=None)}, GOOD),
    ("RFC-002", {"rfcs/0001-add-routing.md": rfc(authors="")}, GOOD),
    ("RFC-003", {"rfcs/0001-add-routing.md": rfc(reviewers="[x]")}, GOOD),
    ("RFC-003", {"rfcs/0001-add-routing.md": rfc(**{**DECIDED, "decision":
                 DECIDED["decision"] + "\n  votes: 3"})},
     {"rfcs/0001-add-routing.md": rfc(**DECIDED)}),
    ("RFC-004", {"rfcs/0001-add-routing.md": rfc(rfc='"one"')}, GOOD),
    ("RFC-004", {"rfcs/0001-add-routing.md": rfc(authors="alice")}, GOOD),
    ("RFC-004", {"rfcs/0001-add-routing.md": rfc(authors='["@alice"]')}, GOOD),
    ("RFC-004", {"rfcs/0001-add-routing.md": rfc(authors="[alice, Alice]")}, GOOD),
    ("RFC-004", {"rfcs/0001-add-routing.md": rfc(title="[a, b]")}, GOOD),
    ("RFC-004", {"rfcs/0001-add-routing.md": rfc(requires="[two]")}, GOOD),
    ("RFC-004", {"rfcs/0001-add-routing.md": rfc(**{**DECIDED, "decision":
                 "\n  date: 2026-12-10\n  deciders: [carol]\n  tally: {yes: 3}"})},
     {"rfcs/0001-add-routing.md": rfc(**DECIDED)}),
    ("RFC-005", {"rfcs/0001-add-routing.md": rfc(type="stndard")}, GOOD),
    ("RFC-006", {"rfcs/0001-add-routing.md": rfc(status="opened")}, GOOD),
    ("RFC-007", {"rfcs/0001-add-routing.md": rfc(created="25/11/2026")}, GOOD),
    ("RFC-007", {"rfcs/0001-add-routing.md": rfc(**{**OPEN, "comment_period_ends":
                 "2026-12-04"})}, {"rfcs/0001-add-routing.md": rfc(**OPEN)}),
    ("RFC-007", {"rfcs/0001-add-routing.md": rfc(**{**OPEN, "comment_period_ends":
                 "2026-12-04T17:00:00+02:00"})}, {"rfcs/0001-add-routing.md": rfc(**OPEN)}),
    ("RFC-008", {"rfcs/0001-add-routing.md": rfc(**{**OPEN, "comment_period_ends": None})},
     {"rfcs/0001-add-routing.md": rfc(**OPEN)}),
    ("RFC-008", {"rfcs/0001-add-routing.md": rfc(**{**DECIDED, "decision": None})},
     {"rfcs/0001-add-routing.md": rfc(**DECIDED)}),
    ("RFC-008", {"rfcs/0001-add-routing.md": rfc(decision=DECIDED["decision"])}, GOOD),
    ("RFC-008", {"rfcs/0001-add-routing.md": rfc(**{**OPEN, "discussion": None})},
     {"rfcs/0001-add-routing.md": rfc(**OPEN)}),
    ("RFC-009", {"rfcs/0001-add-routing.md": rfc(discussion="see slack")},
     {"rfcs/0001-add-routing.md": rfc(discussion="https://ghe.example.com/a/b/issues/3")}),
    ("RFC-010", {"rfcs/add-routing.md": rfc()}, GOOD),
    ("RFC-010", {"rfcs/0002-add-routing.md": rfc()}, GOOD),
    ("RFC-011", {"rfcs/0001-routing.md": rfc()}, GOOD),
    ("RFC-012", {**GOOD, "rfcs/0001-other.md": rfc(title="Other")}, GOOD),
    ("RFC-013", {"rfcs/0001-add-routing.md": rfc(requires="[9]")},
     {**GOOD, "rfcs/0009-other.md": rfc(rfc="9", title="Other")}),
    ("RFC-013", {"rfcs/0001-add-routing.md": rfc(supersedes="1")}, GOOD),
    ("RFC-014", {"rfcs/0001-add-routing.md": rfc(), "rfcs/0002-new.md":
                 rfc(rfc="2", title="New", supersedes="[1]")},
     {"rfcs/0001-add-routing.md": rfc(superseded_by="[2]"), "rfcs/0002-new.md":
      rfc(rfc="2", title="New", supersedes="[1]")}),
    ("RFC-015", {"rfcs/0001-add-routing.md": rfc(body=BODY + "\n---\nrfc: 2\ntitle: B\n---\n")},
     {"rfcs/0001-add-routing.md": rfc(body=BODY + "\n---\n\nA thematic break is fine.\n")}),
    ("RFC-016", {"rfcs/0001-add-routing.md": rfc(body=BODY.replace("## Drawbacks", "Drawbacks"))},
     GOOD),
    ("RFC-016", {"rfcs/0001-add-routing.md": rfc(body=BODY.replace("## Design", "### Design"))},
     GOOD),
    ("RFC-017", {"rfcs/0001-add-routing.md": rfc(body=BODY.replace("Summary", "TMP")
                 .replace("Motivation", "Summary").replace("TMP", "Motivation"))}, GOOD),
    ("RFC-019", {"rfcs/0001-add-routing.md": rfc(body=BODY).replace(
        "status: draft\n", "status: draft\nstatus: accepted\n")}, GOOD),
    ("RFC-018", {"rfcs/0001-add-routing.md": rfc(body=BODY.replace("D.", "<!-- fill -->"))},
     GOOD),
]


@pytest.mark.parametrize(("rule", "bad", "good"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fails_the_bad_document_and_passes_the_good_one(rule, bad, good):
    assert rule in found(bad)
    assert rule not in found(good)


def test_every_rule_is_covered():
    assert {c[0] for c in CASES} == set(RULE_BY_ID)
    assert [r.id for r in RULES] == sorted(RULE_BY_ID)


def test_good_documents_have_no_problems_at_all():
    for files in (GOOD, {"rfcs/0001-add-routing.md": rfc(**OPEN)},
                  {"rfcs/0001-add-routing.md": rfc(**DECIDED)}):
        result = lint(files)
        assert result.diagnostics == [] and result.ok


def test_warnings_do_not_fail_the_lint():
    result = lint({"rfcs/0001-routing.md": rfc()})
    assert [d.rule for d in result.diagnostics] == ["RFC-011"]
    assert result.ok and result.summary() == "1 file checked: 0 errors, 1 warning"


def test_duplicate_field_names_both_lines():
    text = rfc().replace("status: draft\n", "status: draft\n# note\nstatus: review\n")
    (diagnostic,) = [d for d in lint({"rfcs/0001-add-routing.md": text}).diagnostics
                     if d.rule == "RFC-019"]
    assert diagnostic.line == 7
    assert diagnostic.message == ("field 'status' appears again (first on line 5); "
                                  "only the last one counts")


def test_messages_point_at_the_line_and_suggest_the_fix():
    result = lint({"rfcs/0001-add-routing.md": rfc(type="stndard", reviewers="[x]")})
    by_rule = {d.rule: d for d in result.diagnostics}
    assert by_rule["RFC-005"].line == 4
    assert by_rule["RFC-005"].hint is not None
    assert by_rule["RFC-005"].hint.startswith("did you mean 'standard'?")
    assert by_rule["RFC-003"].line == 8
    assert by_rule["RFC-003"].message == "unknown field 'reviewers'"
    assert by_rule["RFC-005"].text() == (
        "rfcs/0001-add-routing.md:4:1: RFC-005 type 'stndard' is not one of: "
        + ", ".join(TYPES)
        + "\n    hint: did you mean 'standard'? types are set by rfc.types in .github/cvf.yml")


def test_yaml_error_reports_the_yaml_line():
    result = lint({"rfcs/0001-add-routing.md": "---\nrfc: 1\ntitle: x\n  bad: indent\n---\n"})
    (diagnostic,) = result.diagnostics
    assert (diagnostic.rule, diagnostic.line) == ("RFC-001", 4)
    assert "invalid YAML" in diagnostic.message


def test_value_inside_a_list_points_at_its_own_line():
    text = rfc(authors="\n  - alice\n  - '@bob'")
    (diagnostic,) = lint({"rfcs/0001-add-routing.md": text}).diagnostics
    assert diagnostic.rule == "RFC-004" and diagnostic.line == 8 and diagnostic.column == 6
    assert diagnostic.hint == "write 'bob' without the @"


def test_json_output():
    result = lint({"rfcs/0001-add-routing.md": rfc(status="opened")})
    data = json.loads(result.as_json())
    assert data["files"] == 1 and data["errors"] == 1 and data["warnings"] == 0
    assert data["diagnostics"][0] == {
        "path": "rfcs/0001-add-routing.md", "line": 5, "column": 1, "rule": "RFC-006",
        "name": "status", "severity": "error",
        "message": "status 'opened' is not one of: draft, open_for_comment, review, accepted, "
                   "rejected, withdrawn, postponed",
        "hint": "new RFCs start as `status: draft`",
    }


def test_github_annotations_escape_their_data():
    result = lint({"rfcs/0001-add-routing.md": rfc(discussion="'100%, really: no'")})
    assert result.as_github() == (
        "::error file=rfcs/0001-add-routing.md,line=8,col=1,title=RFC-009 discussion::"
        "discussion must be a pull request or issue URL, got '100%25, really: no'"
        "%0Ahint: e.g. `discussion: https://github.com/OWNER/REPO/pull/42`")
    warning = lint({"rfcs/0001-routing.md": rfc()}).as_github()
    assert warning.startswith("::warning file=rfcs/0001-routing.md,line=3,")


def test_lint_sources_resolves_references_against_the_folder(tmp_path: Path):
    (tmp_path / "0001-add-routing.md").write_text(rfc())
    target = tmp_path / "0002-more.md"
    target.write_text(rfc(rfc="2", title="More", requires="[1]"))
    corpus = [(p, p.name) for p in sorted(tmp_path.glob("*.md"))]
    result = lint_sources([(target, "0002-more.md")], corpus=corpus, types=TYPES)
    assert result.files == 1 and result.diagnostics == []
    alone = lint_sources([(target, "0002-more.md")], types=TYPES)
    assert [d.rule for d in alone.diagnostics] == ["RFC-013"]


def test_a_duplicate_number_is_reported_on_both_files():
    result = lint({**GOOD, "rfcs/0001-other.md": rfc(title="Other")})
    assert sorted(d.path for d in result.diagnostics if d.rule == "RFC-012") == [
        "rfcs/0001-add-routing.md", "rfcs/0001-other.md"]


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=False),
                     st.text(max_size=12), st.dates().map(str),
                     st.sampled_from(["2026-12-04T17:00:00Z", "draft", "accepted", "standard",
                                      "alice", "@bob", "https://github.com/a/b/pull/1"]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["date", "deciders", "tally", "approve", "reason", "x"]), inner, max_size=3)),
    max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(fields=st.dictionaries(st.sampled_from([*FIELDS, "decision", "supersedes",
                                               "superseded_by", "requires", "discussion",
                                               "comment_period_ends", "other"]),
                              _values, max_size=8),
       body=st.text(max_size=80))
def test_any_front_matter_gives_diagnostics_never_an_exception(fields, body):
    text = "---\n" + yaml.safe_dump(fields, allow_unicode=True) + "---\n" + body
    result = lint({"rfcs/0001-add-routing.md": text})
    for diagnostic in result.diagnostics:
        assert diagnostic.rule in RULE_BY_ID and diagnostic.line >= 1
        assert diagnostic.text().startswith("rfcs/0001-add-routing.md:")


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_gives_diagnostics_never_an_exception(text):
    result = lint({"rfcs/0001-add-routing.md": text})
    assert result.files == 1
