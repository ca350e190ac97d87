"""``cvf rfc new|lint|index`` as a user runs them: files written, output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.commands import register_all
from bot.rfc.document import parse_rfc
from bot.rfc.index import render_index
from tests.test_rfc_lint import BODY, rfc

register_all(cli)
REPO = Path(__file__).resolve().parents[1]
NO_AUTHOR_ENV = {"GITHUB_ACTOR": "", "GITHUB_ACTIONS": "", "GIT_CONFIG_NOSYSTEM": "1",
                 "GIT_CONFIG_GLOBAL": "/dev/null"}


def run(root: Path, *args: str, env: dict[str, str] | None = None,
        catch_exceptions: bool = True) -> Any:
    return CliRunner().invoke(cli, ["--root", str(root), *args],
                              env={**NO_AUTHOR_ENV, **(env or {})},
                              catch_exceptions=catch_exceptions)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "cvf.yml").write_text("rfc:\n  directory: proposals\n")
    (tmp_path / "proposals").mkdir()
    return tmp_path


def write(repo: Path, name: str, text: str) -> Path:
    file = repo / "proposals" / name
    file.write_bytes(text.encode("utf-8"))
    return file


# -- new ------------------------------------------------------------------------------
def test_new_writes_the_first_rfc_from_the_template(repo: Path):
    result = run(repo, "rfc", "new", "Add: Multi-Agent Routing", "--type", "capability_proposal",
                 "--author", "@alice", "--author", "bob", "--now", "2026-11-25T10:00:00Z")
    assert result.exit_code == 0, result.output
    assert "created proposals/0001-add-multi-agent-routing.md (RFC 1" in result.output
    doc = parse_rfc((repo / "proposals" / "0001-add-multi-agent-routing.md").read_text())
    assert (doc.number, doc.title, doc.type, doc.status) == (
        1, "Add: Multi-Agent Routing", "capability_proposal", "draft")
    assert doc.authors == ("alice", "bob") and str(doc.created) == "2026-11-25"
    assert [h.text for h in doc.headings] == [
        "Summary", "Motivation", "Design", "Drawbacks", "Alternatives", "Unresolved questions"]
    # Only the empty sections stand between the new file and a clean lint.
    lint = run(repo, "rfc", "lint", "--format", "json")
    assert {d["rule"] for d in json.loads(lint.output)["diagnostics"]} == {"RFC-018"}


def test_new_takes_the_number_after_the_highest_file_name_or_front_matter(repo: Path):
    write(repo, "0001-a.md", rfc(title="A"))
    write(repo, "0003-c.md", rfc(rfc="3", title="C"))
    write(repo, "0000-template.md", rfc(rfc="0"))
    write(repo, "broken.md", "\x00binary")
    assert "(RFC 4," in run(repo, "rfc", "new", "D", "--type", "standard", "--author", "a").output
    write(repo, "0005-e.md", rfc(rfc="9", title="E"))
    assert "0010-f.md" in run(repo, "rfc", "new", "F", "--type", "standard", "--author", "a").output


def test_new_uses_github_actor_when_no_author_is_given(repo: Path):
    result = run(repo, "rfc", "new", "T", "--type", "roadmap", env={"GITHUB_ACTOR": "octocat"})
    assert result.exit_code == 0
    assert "authors: [octocat]" in (repo / "proposals" / "0001-t.md").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["T", "--type", "nope", "--author", "a"], "'nope' is not one of: capability_proposal"),
    (["T", "--type", "standard", "--author", "not a login"], "is not a GitHub login"),
    (["  ", "--type", "standard", "--author", "a"], "one-line title"),
    (["T", "--type", "standard"], "pass --author <github-login>"),
    (["--type", "standard"], "Missing argument 'TITLE'"),
])
def test_new_usage_errors_exit_2(repo: Path, args: list[str], message: str):
    result = run(repo, "rfc", "new", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert list((repo / "proposals").iterdir()) == []


# -- lint -----------------------------------------------------------------------------
def test_lint_clean_folder_exits_0(repo: Path):
    write(repo, "0001-add-routing.md", rfc())
    result = run(repo, "rfc", "lint")
    assert result.exit_code == 0
    assert result.output == "1 file checked: no problems\n"


def test_lint_errors_exit_1_with_location_and_hint(repo: Path):
    write(repo, "0001-add-routing.md", rfc(type="stndard"))
    result = run(repo, "rfc", "lint")
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [
        "proposals/0001-add-routing.md:4:1: RFC-005 type 'stndard' is not one of: "
        "capability_proposal, policy_change, roadmap, standard, breaking_change",
        "    hint: did you mean 'standard'? types are set by rfc.types in .github/cvf.yml",
    ]
    assert result.output.endswith("1 file checked: 1 error, 0 warnings\n")


def test_lint_json_and_annotations(repo: Path):
    write(repo, "0001-add-routing.md", rfc(status="opened"))
    as_json = json.loads(run(repo, "rfc", "lint", "--format", "json").output)
    assert as_json["errors"] == 1 and as_json["diagnostics"][0]["rule"] == "RFC-006"
    plain = run(repo, "rfc", "lint")
    assert "::error" not in plain.output
    in_actions = run(repo, "rfc", "lint", env={"GITHUB_ACTIONS": "true"})
    assert in_actions.exit_code == 1
    assert ("::error file=proposals/0001-add-routing.md,line=5,col=1,title=RFC-006 status::"
            in in_actions.output)


def test_lint_given_paths_checks_only_those_but_resolves_references(repo: Path):
    write(repo, "0001-add-routing.md", rfc(type="bad"))
    second = write(repo, "0002-more.md", rfc(rfc="2", title="More", requires="[1]"))
    result = run(repo, "rfc", "lint", str(second))
    assert result.exit_code == 0, result.output
    folder = run(repo, "rfc", "lint", str(repo / "proposals"))
    assert folder.exit_code == 1 and "2 files checked" in folder.output


def test_list_rules(repo: Path):
    result = run(repo, "rfc", "lint", "--list-rules")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 20
    assert lines[5].split()[:3] == ["RFC-005", "type", "error"]
    assert lines[11].split()[:3] == ["RFC-011", "slug", "warning"]


def test_lint_missing_path_is_a_usage_error(repo: Path):
    result = run(repo, "rfc", "lint", str(repo / "nope.md"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.parametrize(("content", "message"), [
    (b"", "RFC-000 file is empty"),
    (b"---\ntitle: x\n---\n\x89PNG\r\n\x1a\n\x00\x00\x00", "RFC-000 not a text file"),
    (b"---\n- rfc: 1\n- title: x\n---\n",
     "RFC-001 front matter must be a mapping of fields, got a list"),
    (b"---\nrfc: 1\n" + b"x" * (5 * 1024 * 1024) + b"\n---\n", "RFC-000 file is too large"),
    (b"---\nrfc: 1\ntitle: [oops\n---\n", "RFC-001 invalid YAML"),
], ids=["empty", "binary", "list-front-matter", "5-MB", "broken-yaml"])
def test_bad_input_is_a_clear_error_with_exit_1(repo: Path, content: bytes, message: str):
    (repo / "proposals" / "0001-bad.md").write_bytes(content)
    result = run(repo, "rfc", "lint")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "proposals/0001-bad.md:" in result.output and message in result.output
    assert "Traceback" not in result.output
    assert "hint:" in result.output


def test_bad_config_is_exit_1_with_its_line(repo: Path):
    (repo / ".github" / "cvf.yml").write_text("rfc:\n  types: standard\n")
    result = run(repo, "rfc", "lint")
    assert result.exit_code == 1
    assert "error: .github/cvf.yml:2: rfc.types: expected a list" in result.output


# -- index ----------------------------------------------------------------------------
def test_index_writes_then_check_passes_then_goes_stale(repo: Path):
    write(repo, "0001-add-routing.md", rfc())
    write(repo, "0002-dash.md", rfc(rfc="2", title="Dash", type="roadmap", status="accepted",
                                    discussion="https://github.com/a/b/pull/2",
                                    decision="{date: 2026-12-01, deciders: [carol]}"))
    missing = run(repo, "rfc", "index", "--check")
    assert missing.exit_code == 1 and "proposals/README.md is missing" in missing.output
    assert run(repo, "rfc", "index").output == "wrote proposals/README.md\n"
    index = (repo / "proposals" / "README.md").read_text()
    assert "| [0001](0001-add-routing.md) | Add Routing | standard | alice, bob | 2026-11-20 |" \
        in index
    assert "| [0002](0002-dash.md) | Dash | roadmap | alice, bob | 2026-12-01 |" in index
    assert index.index("### Draft") < index.index("### Accepted") < index.index("## By type")
    assert "`proposals/NNNN-slug.md`" in index
    ok = run(repo, "rfc", "index", "--check")
    assert ok.exit_code == 0 and "is up to date" in ok.output
    write(repo, "0001-add-routing.md", rfc(title="Add Routing v2"))
    stale = run(repo, "rfc", "index", "--check")
    assert stale.exit_code == 1
    assert "proposals/README.md is stale; run `cvf rfc index`" in stale.output
    assert "-| [0001](0001-add-routing.md) | Add Routing |" in stale.output
    assert "+| [0001](0001-add-routing.md) | Add Routing v2 |" in stale.output


def test_index_escapes_titles_and_refuses_unparseable_rfcs(repo: Path):
    write(repo, "0001-x.md", rfc(title='"@team | <b>hi</b>"'))
    assert run(repo, "rfc", "index").exit_code == 0
    index = (repo / "proposals" / "README.md").read_text()
    assert "@\u200dteam \\| &lt;b&gt;hi&lt;/b&gt;" in index
    write(repo, "0002-y.md", "no front matter\n")
    broken = run(repo, "rfc", "index")
    assert broken.exit_code == 1
    assert "error: proposals/0002-y.md:1: no front matter" in broken.output


def test_index_without_stats_has_no_stats_section():
    doc = parse_rfc(rfc(), path="rfcs/0001-add-routing.md")
    page = render_index([doc], types=("standard",))
    assert page == render_index([doc], types=("standard",), stats=None)
    assert "statistic" not in page.lower()


def test_a_registered_stats_provider_reaches_the_index_template(repo: Path):
    from bot.rfc import index as index_module

    write(repo, "0001-add-routing.md", rfc())
    seen: list[Any] = []

    def provider(docs: Any, rfc_config: Any) -> Any:
        seen.append(([d.number for d in docs], rfc_config["directory"]))
        raise RuntimeError("stats provider called")

    previous = index_module._stats_provider[:]  # another module may have registered one
    index_module.provide_stats(provider)
    try:
        with pytest.raises(RuntimeError, match="stats provider called"):
            run(repo, "rfc", "index", catch_exceptions=False)
    finally:
        index_module.provide_stats(previous[0] if previous else None)
    assert seen == [([1], "proposals")]


# -- this repository ------------------------------------------------------------------
def test_this_repository_rfcs_lint_clean_and_index_is_current():
    assert run(REPO, "rfc", "lint").output.startswith("4 files checked: no problems")
    assert run(REPO, "rfc", "index", "--check").exit_code == 0


def test_template_has_the_required_sections():
    from bot.rfc.lint_rules import REQUIRED_SECTIONS

    template = parse_rfc((REPO / "rfcs" / "0000-template.md").read_text())
    names = [h.text for h in template.headings if h.level == 2]
    assert names[:len(REQUIRED_SECTIONS)] == list(REQUIRED_SECTIONS)
    assert BODY.count("## ") == len(REQUIRED_SECTIONS)


def test_index_names_no_project_and_links_only_files_that_exist(tmp_path):
    """A user's repository gets an index about its own RFCs: no "CVF Governance", and no
    link to a template the folder does not hold."""
    from bot.rfc.document import parse_rfc
    from bot.rfc.index import render_index
    from tests.rfc_samples import rfc_text

    doc = parse_rfc(rfc_text(), path="rfcs/0005-shared-vocabulary.md")
    page = render_index([doc], types=("standard",))
    assert "CVF Governance" not in page and "0000-template.md" not in page
    assert "this project" in page
    with_template = render_index([doc], types=("standard",), template="0000-template.md")
    assert "[0000-template.md](0000-template.md)" in with_template
