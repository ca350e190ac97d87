"""The routing core: decisions per risk level, agent choice, fallbacks, load, priority,
constraints, health and recovery — plain data in, decisions out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import InputError
from bot.routing import (
    Backoff,
    Constraints,
    RiskLevel,
    RoutingDecision,
    RoutingRequest,
    RoutingResult,
    SkillRouter,
    TimeWindow,
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_cvf_design_example():
    router = SkillRouter()
    router.register_agent("executor-1", ["deploy", "execute"])
    router.register_skill("deploy-prod", RiskLevel.R2, ["deploy"])
    result = router.route(RoutingRequest(skill_id="deploy-prod"))
    assert isinstance(result, RoutingResult)
    assert result.decision == RoutingDecision.APPROVAL_REQUIRED
    assert result.agent_id == "executor-1"
    assert result.approval_role == "approval_manager"
    assert result.fallback_agents == ()
    assert 0.0 <= result.confidence <= 1.0 and result.confidence == 1.0
    assert "executor-1 has deploy" in result.reason


@pytest.mark.parametrize(("level", "decision", "role"), [
    ("R0", RoutingDecision.AUTO_EXECUTE, None),
    ("R1", RoutingDecision.SCOPE_GUARD, None),
    ("R2", RoutingDecision.APPROVAL_REQUIRED, "approval_manager"),
    ("R3", RoutingDecision.HUMAN_INTERVENTION, "committee"),
])
def test_each_risk_level_has_its_decision_and_role(level, decision, role):
    router = SkillRouter()
    router.register_agent("a", ["x"])
    router.register_skill("s", level, ["x"])
    result = router.route(RoutingRequest(skill_id="s"))
    assert (result.decision, result.approval_role, result.agent_id) == (decision, role, "a")
    assert result.to_dict()["decision"] == decision.value


def test_approval_roles_are_configurable_per_level_and_per_skill():
    router = SkillRouter(approval_roles={"R2": "release", "R3": "board"})
    router.register_agent("a", ["x"])
    router.register_skill("plain", "R2", ["x"])
    router.register_skill("special", "R2", ["x"], approval_role="db_owner")
    router.register_skill("risky", "R3", ["x"], approval_role="db_owner")
    route = router.route
    assert route(RoutingRequest(skill_id="plain")).approval_role == "release"
    assert route(RoutingRequest(skill_id="special")).approval_role == "db_owner"
    assert route(RoutingRequest(skill_id="risky")).approval_role == "board"


def test_request_can_raise_but_not_lower_the_skill_level():
    router = SkillRouter()
    router.register_agent("a", ["x"])
    router.register_skill("s", "R1", ["x"])
    raised = router.route(RoutingRequest(skill_id="s", risk_level="R3"))
    assert raised.risk_level == RiskLevel.R3 and "raised from R1 to R3" in raised.reason
    kept = router.route(RoutingRequest(skill_id="s", risk_level=RiskLevel.R0))
    assert kept.risk_level == RiskLevel.R1 and "below the skill's R1" in kept.reason


def test_unregistered_skill_is_treated_as_highest_risk_unless_told():
    router = SkillRouter()
    router.register_agent("a", ["x"])
    unknown = router.route(RoutingRequest(skill_id="mystery", required_capabilities=["x"]))
    assert unknown.decision == RoutingDecision.HUMAN_INTERVENTION and unknown.agent_id == "a"
    assert "not registered" in unknown.reason
    told = router.route(RoutingRequest(skill_id="mystery", risk_level="R0",
                                       required_capabilities=["x"]))
    assert told.decision == RoutingDecision.AUTO_EXECUTE


def test_no_capable_agent_names_the_missing_capabilities():
    router = SkillRouter()
    router.register_agent("a", ["deploy"])
    router.register_skill("train", "R1", ["gpu", "deploy", "tpu"])
    result = router.route(RoutingRequest(skill_id="train"))
    assert result.agent_id is None and not result.routed
    assert result.missing_capabilities == ("gpu", "tpu")
    assert result.decision == RoutingDecision.HUMAN_INTERVENTION
    assert result.confidence == 0.0
    assert "No agent has capabilities gpu, tpu" in result.reason


def test_no_single_agent_with_every_capability():
    router = SkillRouter()
    router.register_agent("a", ["deploy"])
    router.register_agent("b", ["gpu"])
    result = router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                         required_capabilities=["deploy", "gpu"]))
    assert result.agent_id is None and result.missing_capabilities == ()
    assert "No single agent has all of deploy, gpu" in result.reason


def test_least_loaded_by_load_over_capacity_then_id():
    router = SkillRouter(clock=Clock())
    router.register_agent("small", ["x"], capacity=1)
    router.register_agent("big", ["x"], capacity=10)
    router.register_agent("alpha", ["x"], capacity=10)
    router.set_load("small", 0.5)  # 50%
    router.set_load("big", 3)  # 30%
    router.set_load("alpha", 3)  # 30%, ties with big: id decides
    result = router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                         required_capabilities=["x"], reserve=False))
    assert result.agent_id == "alpha"
    assert result.fallback_agents == ("big", "small")


def test_at_most_three_fallbacks_and_only_capable_ones():
    router = SkillRouter()
    for i in range(6):
        router.register_agent(f"a{i}", ["x"])
    router.register_agent("other", ["y"])
    result = router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                         required_capabilities=["x"]))
    assert result.agent_id == "a0"
    assert result.fallback_agents == ("a1", "a2", "a3")


def test_prediction_spreads_a_burst_and_expires_with_learned_durations():
    clock = Clock()
    router = SkillRouter(clock=clock)
    router.register_agent("a", ["x"], capacity=2)
    router.register_agent("b", ["x"], capacity=2)
    request = RoutingRequest(skill_id="s", risk_level="R0", required_capabilities=["x"])
    picks = [router.route(request).agent_id for _ in range(4)]
    assert picks == ["a", "b", "a", "b"]  # reported load is still 0 for both
    assert router.predicted_load("a") == 2
    clock.now += 61  # default expected duration is 60 s
    assert router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                       required_capabilities=["x"], reserve=False)
                        ).reason.endswith("(0% of capacity). Fallbacks: b.")
    assert router.predicted_load("a") == 0

    router.predictor.observe("a", 600)  # "a" is slow: its work is expected to last longer
    router.route(request)  # to a
    clock.now += 120
    assert router.predicted_load("a") == 1


def test_completed_work_releases_load():
    router = SkillRouter(clock=Clock())
    router.register_agent("a", ["x"])
    router.route(RoutingRequest(skill_id="s", risk_level="R0", required_capabilities=["x"]))
    assert router.predicted_load("a") == 1
    router.record_outcome("a", duration=5)
    assert router.predicted_load("a") == 0
    assert router.predictor.expected_duration("a") == 5


def test_batch_routes_urgent_first_and_keeps_input_order():
    router = SkillRouter(clock=Clock())
    router.register_agent("fast", ["x"], capacity=1)
    router.register_agent("slow", ["x"], capacity=1)
    router.set_load("slow", 0.5)
    requests = [RoutingRequest(skill_id=f"job-{p}", risk_level="R0",
                               required_capabilities=["x"], priority=p)
                for p in ("low", "normal", "urgent", "high")]
    results = router.route_batch(requests)
    assert [r.skill_id for r in results] == ["job-low", "job-normal", "job-urgent", "job-high"]
    by_skill = {r.skill_id: r.agent_id for r in results}
    assert by_skill["job-urgent"] == "fast"  # served first, got the idle agent
    assert by_skill["job-high"] == "slow"


def test_unhealthy_agents_rank_after_healthy_and_the_reason_says_so():
    router = SkillRouter(health_bound=0.2)
    router.register_agent("a", ["x"])
    router.register_agent("b", ["x"])
    router.set_load("b", 0.9)
    router.set_health("a", 0.5)
    result = router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                         required_capabilities=["x"], reserve=False))
    assert result.agent_id == "b" and result.fallback_agents == ("a",)
    assert "Ranked last for an error rate above 20%: a." in result.reason
    router.set_health("b", 0.9)
    worst = router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                        required_capabilities=["x"], reserve=False))
    assert worst.agent_id == "a"
    assert "error rate 50% is above the 20% bound" in worst.reason
    assert worst.confidence < 1.0
    router.set_health("a", 0.0)
    assert router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                       required_capabilities=["x"])).agent_id == "a"


def test_constraints_labels_region_exclusion_cost():
    router = SkillRouter()
    router.register_agent("eu-cheap", ["x"], labels=["trusted"], region="eu", cost=1)
    router.register_agent("eu-pricey", ["x"], labels=["trusted", "gpu"], region="eu", cost=9)
    router.register_agent("us", ["x"], labels=["trusted"], region="us", cost=0)

    def pick(**kw):
        return router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                           required_capabilities=["x"], reserve=False,
                                           constraints=Constraints.of(**kw)))

    assert pick(region="eu").agent_id == "eu-cheap"
    assert pick(labels=["gpu"]).agent_id == "eu-pricey"
    assert pick(exclude_agents=["eu-cheap", "eu-pricey"]).agent_id == "us"
    assert pick(region="eu", max_cost=0.5).agent_id is None
    none = pick(region="eu", max_cost=0.5)
    assert "3 agent(s) have the capabilities, but none meets the constraints" in none.reason
    assert "region eu" in none.reason and "cost at most 0.5" in none.reason
    assert pick(labels=["nope"]).agent_id is None


def test_time_windows():
    monday_9 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # a Monday
    saturday_9 = datetime(2024, 1, 6, 9, 0, tzinfo=UTC)
    router = SkillRouter()
    router.register_agent("office", ["x"], windows=["mon-fri 08:00-18:00"])
    router.register_agent("night", ["x"], windows=["22:00-06:00"])

    def at(moment):
        return router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                           required_capabilities=["x"], reserve=False,
                                           constraints=Constraints.of(at=moment))).agent_id

    assert at(monday_9) == "office"
    assert at(saturday_9) is None
    assert at(datetime(2024, 1, 6, 23, 30, tzinfo=UTC)) == "night"
    assert at(datetime(2024, 1, 7, 5, 59, tzinfo=UTC)) == "night"
    assert TimeWindow.parse("sat,sun 10:00-14:00").contains(datetime(2024, 1, 7, 11, tzinfo=UTC))
    with pytest.raises(InputError, match="unknown day"):
        TimeWindow.parse("funday 10:00-11:00")


def test_fallback_recovery_retries_with_backoff_and_records():
    router = SkillRouter(clock=Clock())
    for name in ("a", "b", "c"):
        router.register_agent(name, ["x"])
    result = router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                         required_capabilities=["x"]))
    slept: list[float] = []

    def attempt(agent: str) -> bool:
        if agent == "a":
            raise TimeoutError("agent a timed out")
        return agent == "c"

    outcome = router.execute(result, attempt, backoff=Backoff(base=1, factor=3, maximum=2),
                             sleep=slept.append)
    assert outcome.ok and outcome.agent_id == "c"
    assert [(s.agent_id, s.ok, s.error) for s in outcome.attempts] == [
        ("a", False, "TimeoutError"), ("b", False, "failed"), ("c", True, None)]
    assert slept == [1, 2]  # 1 * 3**0, then 1 * 3**1 capped at 2
    assert router.recoveries[-1] is outcome
    assert router.predicted_load("a") == 0  # the failed assignment was released

    def always_fails(agent: str) -> bool:
        return False

    failed = router.execute(result, always_fails, sleep=lambda s: None)
    assert not failed.ok and failed.agent_id is None and failed.error_type == "failed"
    assert failed.to_dict()["attempts"][0]["agent_id"] == "a"


def test_bad_registrations_are_clear_errors():
    router = SkillRouter()
    with pytest.raises(InputError, match="capacity must be above 0"):
        router.register_agent("a", ["x"], capacity=0)
    with pytest.raises(InputError, match="expected a risk level"):
        router.register_skill("s", "R7")
    with pytest.raises(InputError, match="unknown agent 'ghost'"):
        router.set_load("ghost", 1)


def test_reregistering_and_unregistering_agents():
    router = SkillRouter()
    router.register_agent("a", ["x"])
    router.register_skill("s", "R0", ["x"])
    router.route(RoutingRequest(skill_id="s"))  # builds the pool for ("x",)
    router.register_agent("a", ["y"])  # a no longer has x
    assert router.route(RoutingRequest(skill_id="s")).agent_id is None
    router.register_agent("b", ["x"])
    assert router.route(RoutingRequest(skill_id="s")).agent_id == "b"
    router.unregister_agent("b")
    assert router.route(RoutingRequest(skill_id="s")).agent_id is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sets(st.sampled_from("abcd"), min_size=1),
                          st.integers(1, 4), st.integers(0, 4), st.booleans()),
                min_size=1, max_size=25),
       st.lists(st.sets(st.sampled_from("abcd"), max_size=2), min_size=1, max_size=15))
def test_index_agrees_with_a_full_scan(agents, requests):
    """Whatever the agents and the order of requests, the indexed choice is the best by
    (healthy first, load/capacity, id) among all agents having the capabilities."""
    router = SkillRouter(clock=Clock())
    for i, (caps, capacity, load, sick) in enumerate(agents):
        router.register_agent(f"g{i:02d}", sorted(caps), capacity=capacity, load=load)
        router.set_health(f"g{i:02d}", 0.9 if sick else 0.0)
    for caps in requests:
        capable = [(a.error_rate > 0.2, router.predicted_load(a.id) / a.capacity, a.id)
                   for a in router.agents.values() if a.capabilities >= caps]
        expected = [c[2] for c in sorted(capable)[:4]]
        result = router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                             required_capabilities=sorted(caps)))
        assert [result.agent_id, *result.fallback_agents] == (expected or [None])


_OPS = st.one_of(
    st.tuples(st.just("route"), st.sets(st.sampled_from("abc"), max_size=2)),
    st.tuples(st.just("load"), st.integers(0, 7), st.integers(0, 5)),
    st.tuples(st.just("health"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("register"), st.integers(0, 7), st.sets(st.sampled_from("abc"),
                                                              min_size=1)),
    st.tuples(st.just("unregister"), st.integers(0, 7)),
    st.tuples(st.just("done"), st.integers(0, 7)),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_OPS, min_size=1, max_size=40))
def test_index_survives_any_sequence_of_changes(ops):
    """Loads, health, re-registration with other capabilities, removal and completed work
    in any order: every route still matches a brute-force ranking of all agents."""
    router = SkillRouter(clock=Clock())
    for i in range(4):
        router.register_agent(f"g{i}", ["a", "b"] if i % 2 else ["a", "c"], capacity=i + 1)
    for op in ops:
        kind, *args = op
        name = f"g{args[0]}" if kind != "route" else ""
        if kind == "route":
            caps = args[0]
            capable = [(a.error_rate > 0.2, router.predicted_load(a.id) / a.capacity, a.id)
                       for a in router.agents.values() if a.capabilities >= caps]
            expected = [c[2] for c in sorted(capable)[:4]] or [None]
            result = router.route(RoutingRequest(skill_id="s", risk_level="R0",
                                                 required_capabilities=sorted(caps)))
            assert [result.agent_id, *result.fallback_agents] == expected
        elif name not in router.agents and kind != "register":
            continue
        elif kind == "load":
            router.set_load(name, args[1])
        elif kind == "health":
            router.set_health(name, 0.9 if args[1] else 0.0)
        elif kind == "register":
            router.register_agent(name, sorted(args[1]), capacity=2)
        elif kind == "unregister":
            router.unregister_agent(name)
        else:
            router.record_outcome(name, duration=1.0)


def test_skill_constraints_apply_to_every_request_and_merge_with_the_requests():
    router = SkillRouter()
    router.register_agent("eu-1", ["x"], region="eu", labels=["pci"], cost=5)
    router.register_agent("eu-2", ["x"], region="eu", labels=["pci"], cost=1)
    router.register_agent("us-1", ["x"], region="us", labels=["pci"], cost=0)
    router.register_skill("payments", "R2", ["x"],
                          constraints=Constraints.of(labels=["pci"], region="eu"))
    first = router.route(RoutingRequest(skill_id="payments", reserve=False))
    assert (first.agent_id, first.fallback_agents) == ("eu-1", ("eu-2",))
    cheap = router.route(RoutingRequest(skill_id="payments", reserve=False,
                                        constraints=Constraints.of(max_cost=2)))
    assert cheap.agent_id == "eu-2"
    moved = router.route(RoutingRequest(skill_id="payments", reserve=False,
                                        constraints=Constraints.of(region="us")))
    assert moved.agent_id == "us-1"  # the request's region wins
