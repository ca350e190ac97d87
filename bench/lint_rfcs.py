"""Lint 1,000 generated RFCs and print files/s (target: 1,000 files in under 1 s).

Run: ``python bench/lint_rfcs.py [--files N] [--repeat R]``. The RFCs are realistic in
size (front matter with references, six sections of prose) and mix every status, so
each file runs every rule, cross-references included. The figure is the best of R runs
of the same code path ``cvf rfc lint`` uses (reading files included); ``--cli`` also
times the whole command in a fresh process (interpreter start-up included).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.rfc.document import slugify
from bot.rfc.lint import directory_sources, lint_sources

TYPES = ("capability_proposal", "policy_change", "roadmap", "standard", "breaking_change")
PARAGRAPH = ("Agents and people share one rule book: every change is routed by risk, "
             "measured, and decided in the open. This paragraph stands in for the prose a "
             "real RFC carries, at a realistic length for one section of a proposal. ") * 3


def front_matter(number: int) -> str:
    status = ("draft", "open_for_comment", "review", "accepted", "rejected")[number % 5]
    lines = [f"rfc: {number}", f"title: Generated proposal number {number}",
             f"type: {TYPES[number % len(TYPES)]}", f"status: {status}",
             "authors: [alice, bob-the-builder]", "created: 2026-01-15"]
    if status != "draft":
        lines.append(f"discussion: https://github.com/acme/governance/pull/{number}")
    if status in ("open_for_comment", "review", "accepted", "rejected"):
        lines.append("comment_period_ends: 2026-02-01T17:00:00Z")
    if status in ("accepted", "rejected"):
        lines += ["decision:", "  date: 2026-02-03", "  deciders: [carol, dan]",
                  "  tally: {approve: 4, reject: 1, abstain: 1}"]
    if number > 1:
        lines.append(f"requires: [{number - 1}]")
    return "---\n" + "\n".join(lines) + "\n---\n"


def body() -> str:
    sections = ("Summary", "Motivation", "Design", "Drawbacks", "Alternatives",
                "Unresolved questions")
    return "".join(f"\n## {name}\n\n{PARAGRAPH}\n\n{PARAGRAPH}\n" for name in sections) + (
        "\n```yaml\n## not a heading\nrfc: 1\n```\n")


def generate(folder: Path, count: int) -> None:
    text_body = body()
    for number in range(1, count + 1):
        name = f"{number:04d}-{slugify(f'Generated proposal number {number}')}.md"
        (folder / name).write_text(front_matter(number) + text_body, "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cli", action="store_true", help="also time `cvf rfc lint`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "rfcs").mkdir()
        generate(root / "rfcs", args.files)
        size = sum(p.stat().st_size for p in (root / "rfcs").iterdir())
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            sources = directory_sources(root, "rfcs")
            result = lint_sources(sources, corpus=sources, types=TYPES)
            best = min(best, time.perf_counter() - start)
        if result.files != args.files or result.diagnostics:
            sys.exit(f"unexpected lint result: {result.summary()}: "
                     f"{[d.text() for d in result.diagnostics[:3]]}")
        print(f"linted {result.files} RFC files ({size / 1e6:.1f} MB), no problems")
        print(f"best of {args.repeat}: {best:.3f} s = {result.files / best:,.0f} files/s "
              f"(target: {args.files} files under 1 s: {'met' if best < 1 else 'MISSED'})")
        if args.cli:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c",
                                   "import sys; from bot.cli import main; main(sys.argv[1:])",
                                   "--root", str(root), "rfc", "lint"],
                                  capture_output=True, text=True, check=False)
            took = time.perf_counter() - start
            print(f"`cvf rfc lint` in a new process: {took:.3f} s "
                  f"(exit {done.returncode}: {done.stdout.strip().splitlines()[-1]})")


if __name__ == "__main__":
    main()
