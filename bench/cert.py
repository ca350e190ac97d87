"""Certification throughput: exam draws, multiple-choice grading, signing and offline
verification, the holds_level gate over a large registry, and scenario replays.

Run: ``python bench/cert.py [--candidates N] [--holders H]``. Prints one line per figure.
The gate figure matters most: RFC and routing handlers ask it for every binding voter or
approver, so it must stay cheap when the registry holds many certificates.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.certification.bank import parse_answer_key, parse_bank
from bot.certification.credential import (
    Issuer,
    build_credential,
    dump_credential,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_credential,
    verify_credential,
)
from bot.certification.exam import draw_exam
from bot.certification.gate import holds_level
from bot.certification.grading import grade_multiple_choice
from bot.certification.program import parse_program
from bot.certification.registry import parse_registry
from bot.certification.rubric import parse_rubric
from bot.certification.scenario import grade_scenario, parse_scenario, plan_from_submission

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def rate(label: str, count: int, seconds: float, unit: str) -> None:
    print(f"{label:<38} {count / seconds:>12,.0f} {unit}/s  ({count:,} in {seconds:.3f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--holders", type=int, default=100_000)
    args = parser.parse_args()
    program = parse_program((ROOT / "certification/program.yml").read_text("utf-8"))
    level = program.level("foundation")
    bank = parse_bank((ROOT / "certification/questions/foundation.yml").read_text("utf-8"),
                      program, source="bank")
    key = parse_answer_key("level: foundation\nanswers:\n" + "".join(
        f"  {q.id}: a\n" for q in bank.questions), bank, source="bench-key")

    start = time.perf_counter()
    papers = [draw_exam(bank, level, f"candidate-{i}", 1, 4) for i in range(args.candidates)]
    rate("exam draws", len(papers), time.perf_counter() - start, "papers")

    start = time.perf_counter()
    for paper in papers:
        answers = {i.question_id: i.choices[0].letter for i in paper.items}
        grade_multiple_choice(paper, answers, key, level)
    rate("multiple-choice grading", len(papers), time.perf_counter() - start, "submissions")

    private, public = generate_keypair()
    signer, verifier = load_private_key(private), load_public_key(public)
    issuer = Issuer("https://github.com/octo-org", "Octo")
    count = max(200, args.candidates // 4)
    start = time.perf_counter()
    texts = [dump_credential(sign_credential(build_credential(
        level, login=f"c{i}", score=80, evidence="https://github.com/o/r/pull/1", issuer=issuer,
        issued=NOW, valid_for=timedelta(days=730)), signer, NOW)) for i in range(count)]
    rate("certificates built + signed", count, time.perf_counter() - start, "certificates")
    start = time.perf_counter()
    assert all(verify_credential(t, public_key=verifier, now=NOW).ok for t in texts)
    rate("certificates verified offline", count, time.perf_counter() - start, "certificates")

    levels = program.level_ids
    registry_text = json.dumps({"version": 1, "attempts": [], "certificates": [
        {"id": f"urn:uuid:{i}", "login": f"user{i}", "level": levels[i % 4], "attempt": 1,
         "score": 90, "issued": "2026-01-01T00:00:00Z", "valid_until": None, "file": "f",
         "evidence": "e"} for i in range(args.holders)]})
    start = time.perf_counter()
    registry = parse_registry(registry_text)
    parsed = time.perf_counter() - start
    label = f"registry parse ({args.holders:,} certs)"
    print(f"{label:<38} {parsed * 1000:>12,.1f} ms")
    asks = 20_000
    start = time.perf_counter()
    for i in range(asks):
        holds_level(f"user{i * 7}", "practitioner", program=program, registry=registry, now=NOW)
    rate("holds_level over that registry", asks, time.perf_counter() - start, "questions")

    rubric = parse_rubric((ROOT / "certification/rubrics/specialist.yml").read_text("utf-8"),
                          program, source="rubric")
    scenario = parse_scenario((ROOT / "certification/scenarios/failing-agent.yml")
                              .read_text("utf-8"), source="failing-agent")
    plan = plan_from_submission({"routing": {
        "risk_levels": {"run-job": "R0", "rotate-secrets": "R2"},
        "capacities": {"executor-1": 3, "executor-2": 3, "executor-3": 3}},
        "alerts": {"error_rate": 0.3, "window": 5, "min_executions": 2}}, scenario)
    runs = 20
    start = time.perf_counter()
    for _ in range(runs):
        grade_scenario(scenario, plan, rubric)
    seconds = time.perf_counter() - start
    label = "scenario replay (failing-agent, 91 execs)"
    print(f"{label:<38} {seconds / runs * 1000:>12,.1f} ms each")


if __name__ == "__main__":
    main()
