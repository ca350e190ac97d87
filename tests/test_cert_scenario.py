"""Scenario simulations are graded by replaying their trace through the real routing
engine with the candidate's configuration; each objective is scored from what happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.certification.documents import DocumentError
from bot.certification.grading import SubmissionError
from bot.certification.program import parse_program
from bot.certification.rubric import parse_rubric
from bot.certification.scenario import grade_scenario, parse_scenario, plan_from_submission

pytest.importorskip("bot.routing")
pytest.importorskip("bot.metrics.record")

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = parse_program((ROOT / "certification/program.yml").read_text("utf-8"))
RUBRIC = parse_rubric((ROOT / "certification/rubrics/specialist.yml").read_text("utf-8"),
                      PROGRAM, source="specialist")


def scenario(name: str):
    path = ROOT / f"certification/scenarios/{name}.yml"
    return parse_scenario(path.read_text("utf-8"), source=str(path))


def outcome(name: str, submission: dict) -> dict[str, tuple[bool, str]]:
    s = scenario(name)
    result = grade_scenario(s, plan_from_submission(submission, s), RUBRIC)
    return {o.kind: (o.met, o.detail) for o in result.objectives} | {
        "score": (result.score >= 85, str(result.score))}


RELEASE_RISKS = {"build": "R0", "unit-test": "R0", "deploy-staging": "R1",
                 "deploy-prod": "R3", "db-migrate": "R3"}
HONEST = {"builder-1": 4, "builder-2": 4, "deployer-1": 2}


def test_every_rubric_assignment_names_a_scenario_that_loads():
    for assignment in RUBRIC.assignments:
        assert scenario(assignment.scenario or assignment.id).objectives


def test_a_sound_configuration_meets_every_objective():
    result = outcome("release-night", {"routing": {"risk_levels": RELEASE_RISKS,
                                                   "capacities": HONEST}})
    assert result["score"] == (True, "100")


def test_r3_classified_low_auto_executes_and_a_vendor_capacity_overloads():
    risks = RELEASE_RISKS | {"deploy-prod": "R1"}
    result = outcome("release-night", {"routing": {"risk_levels": risks,
                                                   "capacities": HONEST | {"deployer-1": 6}}})
    assert result["no_auto_execute"] == (False, "2 execution(s) of deploy-prod (risk R3 or above) "
                                                "ran without a person (decision scope_guard at "
                                                "t=45s)")
    assert result["within_capacity"] == (False, "deployer-1 ran 6 at once at t=45s; its real "
                                                "capacity is 2")
    assert result["score"] == (False, "38")


FAILING = {"risk_levels": {"run-job": "R0", "rotate-secrets": "R2"},
           "capacities": {"executor-1": 3, "executor-2": 3, "executor-3": 3}}


def test_without_an_alert_the_failing_agent_burns_the_budget():
    met, detail = outcome("failing-agent", {"routing": FAILING})["error_budget"]
    assert not met
    assert detail == "18 of 91 executions failed (19.8%); budget 5.0%; agents drained: none"


def test_a_tight_alert_drains_the_failing_agent_in_time():
    result = outcome("failing-agent", {"routing": FAILING, "alerts": {
        "error_rate": 0.3, "window": 5, "min_executions": 2}})
    assert result["error_budget"] == (True, "3 of 91 executions failed (3.3%); budget 5.0%; "
                                            "agents drained: executor-2 at t=70s")
    assert result["score"] == (True, "100")


def test_replay_is_deterministic():
    submission = {"routing": FAILING, "alerts": {"error_rate": 0.5, "window": 10}}
    assert outcome("failing-agent", submission) == outcome("failing-agent", submission)


def test_a_submission_must_configure_every_skill_and_agent():
    with pytest.raises(SubmissionError) as info:
        plan_from_submission({"routing": {"risk_levels": {"run-job": "R0", "nope": "R1"}}},
                             scenario("failing-agent"))
    assert info.value.problems == [
        "routing.risk_levels.nope: no skill 'nope' in scenario failing-agent (skills: run-job, "
        "rotate-secrets)",
        "routing.risk_levels: give a risk level for rotate-secrets",
        "routing.capacities: declare a capacity for executor-1, executor-2, executor-3"]


def test_a_trace_naming_an_unknown_skill_is_a_located_error():
    text = (ROOT / "certification/scenarios/gpu-burst.yml").read_text("utf-8")
    expected = r"gpu.yml:\d+: trace.4.skill: unknown skill 'train-gpu'"
    with pytest.raises(DocumentError, match=expected):
        parse_scenario(text.replace("skill: train-tpu", "skill: train-gpu"), source="gpu.yml")


SCENARIOS = sorted(p.stem for p in (ROOT / "certification/scenarios").glob("*.yml"))
SOLUTIONS = ROOT / "tests/fixtures/cert-solutions"


def solution(name: str, which: str) -> dict:
    import yaml

    data = yaml.safe_load((SOLUTIONS / f"{name}.yml").read_text("utf-8"))
    return dict(data[which])


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_reference_solution_scores_full_marks(name):
    s = scenario(name)
    result = grade_scenario(s, plan_from_submission(solution(name, "reference"), s), RUBRIC)
    assert result.score == 100, [(o.id, o.detail) for o in result.objectives if not o.met]


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_naive_solution_fails(name):
    s = scenario(name)
    result = grade_scenario(s, plan_from_submission(solution(name, "naive"), s), RUBRIC)
    assert result.score < PROGRAM.level("specialist").pass_score
    assert any(not o.met for o in result.objectives)
