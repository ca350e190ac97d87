"""Governance statistics from front matter, and `cvf rfc stats` / `cvf rfc tick` as run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from bot.cli import CliState, cli
from bot.commands import register_all
from bot.commands.rfc_governance import run_tick
from bot.config import parse_config
from bot.rfc.document import parse_rfc
from bot.rfc.stats import compute_stats
from tests.test_rfc_handlers import World

CONFIG = parse_config("rfc:\n  comment_period: {default: 14d, roadmap: 7d}\n").rfc


def doc(number, status, rfc_type="standard", ends=None, decided=None, tally=None):
    lines = [f"rfc: {number}", f"title: RFC {number}", f"type: {rfc_type}",
             f"status: {status}", "authors: [writer]", "created: 2026-01-01"]
    if ends:
        lines.append(f"comment_period_ends: {ends}T09:00:00Z")
    if decided:
        lines.append(f"decision: {{date: {decided}, deciders: [alice], "
                     f"tally: {json.dumps(tally or {})}}}")
    return parse_rfc("---\n" + "\n".join(lines) + "\n---\n\nbody\n",
                     path=f"rfcs/{number:04d}-rfc-{number}.md")


def sample():
    return [
        doc(1, "accepted", ends="2026-02-15", decided="2026-02-20",
            tally={"approve": 3, "reject": 1}),
        doc(2, "rejected", "roadmap", ends="2026-03-08", decided="2026-03-10",
            tally={"approve": 1, "reject": 2, "request_changes": 1}),
        doc(3, "accepted", ends="2026-04-15", decided="2026-04-15",
            tally={"approve": 2, "abstain": 1}),
        doc(4, "open_for_comment", ends="2026-05-01"),
        doc(5, "draft"),
    ]


def test_counts_rates_and_median():
    stats = compute_stats(sample(), CONFIG)
    assert stats.total == 5
    assert stats.by_status == {"draft": 1, "open_for_comment": 1, "accepted": 2, "rejected": 1}
    assert stats.by_type["roadmap"] == {"rejected": 1}
    assert (stats.decided, stats.accepted, stats.rejected) == (3, 2, 1)
    assert round(stats.acceptance_rate or 0, 3) == 0.667
    # approve 6 of 6 + 3 reject + 1 request changes
    assert stats.approval_rate == 6 / 10
    # opened = period end minus the type's period: 19, 9 and 14 days -> median 14.
    assert stats.median_days_to_decision == 14
    assert [r.number for r in stats.recent] == [3, 2, 1]
    assert stats.recent[1].approval_rate == 0.25


def test_empty_folder():
    stats = compute_stats([], CONFIG)
    assert stats.total == 0 and stats.median_days_to_decision is None
    assert stats.as_dict()["recent"] == []


def write_rfcs(root: Path) -> None:
    (root / ".github").mkdir()
    (root / ".github" / "cvf.yml").write_text("rfc:\n  comment_period: {default: 14d, "
                                              "roadmap: 7d}\n", "utf-8")
    (root / "rfcs").mkdir()
    for d in sample():
        (root / d.path).write_text(d.text, "utf-8")


def test_cli_stats_text_and_json(tmp_path):
    write_rfcs(tmp_path)
    register_all(cli)
    runner = CliRunner()
    text = runner.invoke(cli, ["--root", str(tmp_path), "rfc", "stats"])
    assert text.exit_code == 0, text.output
    assert "decided: 3 (2 accepted, 1 rejected)" in text.output
    assert "median time from opening to decision: 14 days" in text.output
    as_json = runner.invoke(cli, ["--root", str(tmp_path), "rfc", "stats", "--format", "json"])
    assert json.loads(as_json.output)["approval_rate"] == 0.6


def test_tick_command_needs_a_repository(tmp_path):
    register_all(cli)
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "rfc", "tick", "--now",
                                      "2026-01-01T00:00:00Z"], env={"GITHUB_REPOSITORY": ""})
    assert result.exit_code == 1
    assert "error: no repository to tick" in result.output


def test_tick_reports_what_it_did(tmp_path):
    world = World()
    world.opened()
    world.say("writer", "/rfc open")
    state = CliState(root=str(tmp_path), config_path=None)
    state._config = world.config
    lines: list[str] = []
    later = world.now + timedelta(days=15)
    code = run_tick(state, repo=world.gh.repo, now=later, dry_run=False, env={},
                    factory=lambda repo, installation, dry_run: world.gh, echo=lines.append)
    assert code == 0
    assert lines[0] == f"#{world.number}: open_for_comment -> review (period_end)"
    assert lines[1].startswith(f"tick at {later.strftime('%Y-%m-%dT%H:%M:%SZ')}: 1 open RFC(s) "
                               f"checked, 1 updated, 1 transition(s);")
    assert world.labels() == ["rfc: review"]
    assert datetime.now(UTC) > later - timedelta(days=10_000)


def test_the_index_shows_the_same_statistics(tmp_path):
    write_rfcs(tmp_path)
    register_all(cli)
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "rfc", "index"])
    assert result.exit_code == 0, result.output
    index = (tmp_path / "rfcs" / "README.md").read_text()
    assert "## Governance statistics" in index
    assert "| Median time from opening to decision | 14 days |" in index
    assert "| Approval rate of binding votes | 60% |" in index
    assert "| 0003 | RFC 3 | accepted | 2026-04-15 | 100% | 14 days |" in index
