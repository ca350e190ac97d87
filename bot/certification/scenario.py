"""Executable scenario simulations, graded by replaying a trace through the real engines.

A scenario ships an agent/skill registry (with each agent's *true* capacity and the
times it fails), a trace of routing requests, and objectives. The candidate submits a
routing configuration (a risk level per skill, a declared capacity per agent) and an
alert rule (drain an agent whose recent error rate exceeds a bound). The replay feeds
every request to ``bot.routing.SkillRouter`` and every execution, as an
``ExecutionMetric`` record, to the metrics contract; the objectives are then checked
against what happened, so a configuration passes only if the real router, driven by
it, keeps the promises.

Time is simulated in whole seconds; the same scenario and submission always give the
same replay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.certification.documents import DocumentError, load_document
from bot.certification.grading import SubmissionError, percent
from bot.certification.rubric import Rubric
from bot.config import located_problem
from bot.errors import CvfError

RISKS = ("R0", "R1", "R2", "R3")
AUTOMATIC = ("auto_execute", "scope_guard")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
MAX_STEPS = 100_000


@dataclass(frozen=True)
class AgentSpec:
    id: str
    capabilities: tuple[str, ...]
    capacity: int
    failures: tuple[tuple[int, int], ...]

    def fails_at(self, moment: int) -> bool:
        return any(start <= moment < end for start, end in self.failures)


@dataclass(frozen=True)
class SkillSpec:
    id: str
    risk_level: str
    required_capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Request:
    seq: int
    at: int
    skill: str
    duration: int
    priority: int
    latency_ms: float | None = None


@dataclass(frozen=True)
class ObjectiveSpec:
    id: str
    kind: str
    text: str
    risk_at_least: str = "R3"
    max_error_rate: float = 0.05
    tolerance: int = 10
    latency: dict[str, Any] | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    story: str
    agents: tuple[AgentSpec, ...]
    skills: tuple[SkillSpec, ...]
    requests: tuple[Request, ...]
    objectives: tuple[ObjectiveSpec, ...]


def parse_scenario(text: str, *, source: str) -> Scenario:
    located = load_document(text, kind="scenario", source=source)
    data = located.data
    problems = []
    skills = tuple(SkillSpec(s["id"], s["risk_level"], tuple(s["required_capabilities"]))
                   for s in data["registry"]["skills"])
    skill_ids = {s.id for s in skills}
    agents = tuple(AgentSpec(a["id"], tuple(a["capabilities"]), a["capacity"],
                             tuple((f["from"], f["until"]) for f in a.get("failures", [])))
                   for a in data["registry"]["agents"])
    requests = []
    seq = 0
    for index, step in enumerate(data["trace"]):
        if step["skill"] not in skill_ids:
            problems.append(located_problem(source, located, ("trace", index, "skill"),
                                            f"unknown skill '{step['skill']}'"))
            continue
        for _ in range(step.get("repeat", 1)):
            requests.append(Request(seq, step["at"], step["skill"], step.get("duration", 10),
                                    step.get("priority", 5), step.get("latency_ms")))
            seq += 1
    objectives = tuple(ObjectiveSpec(o["id"], o["kind"], o["text"], o.get("risk_at_least", "R3"),
                                     float(o.get("max_error_rate", 0.05)),
                                     int(o.get("tolerance", 10)), o.get("latency"))
                       for o in data["objectives"])
    if problems:
        raise DocumentError(problems[0], problems=problems)
    return Scenario(data["id"], data["title"], str(data.get("story", "")).strip(), agents, skills,
                    tuple(requests), objectives)


@dataclass(frozen=True)
class Plan:
    """The candidate's configuration, checked against the scenario."""

    risk_levels: dict[str, str]
    capacities: dict[str, int]
    alert_error_rate: float | None
    alert_window: int
    alert_min_executions: int
    diagnosis: dict[str, Any] = field(default_factory=dict)


def plan_from_submission(submission: dict[str, Any], scenario: Scenario) -> Plan:
    problems = []
    routing = submission.get("routing") or {}
    risks = dict(routing.get("risk_levels") or {})
    caps = dict(routing.get("capacities") or {})
    skill_ids = [s.id for s in scenario.skills]
    agent_ids = [a.id for a in scenario.agents]
    for name in risks:
        if name not in skill_ids:
            problems.append(f"routing.risk_levels.{name}: no skill '{name}' in scenario "
                            f"{scenario.id} (skills: {', '.join(skill_ids)})")
    for name in caps:
        if name not in agent_ids:
            problems.append(f"routing.capacities.{name}: no agent '{name}' in scenario "
                            f"{scenario.id} (agents: {', '.join(agent_ids)})")
    missing_skills = [s for s in skill_ids if s not in risks]
    if missing_skills:
        problems.append(f"routing.risk_levels: give a risk level for {', '.join(missing_skills)}")
    missing_agents = [a for a in agent_ids if a not in caps]
    if missing_agents:
        problems.append(f"routing.capacities: declare a capacity for {', '.join(missing_agents)}")
    if problems:
        raise SubmissionError(problems[0], problems=problems)
    alerts = submission.get("alerts") or {}
    return Plan(risk_levels=risks, capacities={k: int(v) for k, v in caps.items()},
                alert_error_rate=alerts.get("error_rate"),
                alert_window=int(alerts.get("window", 10)),
                alert_min_executions=int(alerts.get("min_executions", 1)),
                diagnosis=dict(submission.get("diagnosis") or {}))


@dataclass
class Execution:
    request: Request
    agent: str
    decision: str
    start: int
    end: int
    success: bool


@dataclass
class Replay:
    executions: list[Execution] = field(default_factory=list)
    unroutable: list[tuple[Request, str]] = field(default_factory=list)
    peak: dict[str, tuple[int, int]] = field(default_factory=dict)  # agent -> (in flight, at)
    drained: dict[str, int] = field(default_factory=dict)  # agent -> first time marked unhealthy
    records: list[Any] = field(default_factory=list)  # ExecutionMetric


@dataclass(frozen=True)
class ObjectiveResult:
    id: str
    kind: str
    text: str
    met: bool
    detail: str
    weight: int


@dataclass(frozen=True)
class ScenarioResult:
    scenario: str
    score: int
    objectives: tuple[ObjectiveResult, ...]
    executions: int
    failures: int


def _engines() -> tuple[Any, Any, Any]:
    try:
        from bot.metrics.record import ExecutionMetric
        from bot.routing import RoutingRequest, SkillRouter
    except ImportError as exc:  # pragma: no cover - both ship with the package
        raise CvfError(f"the scenario grader needs the routing and metrics engines: "
                       f"{exc}") from None
    return SkillRouter, RoutingRequest, ExecutionMetric


def replay(scenario: Scenario, plan: Plan) -> Replay:
    skill_router_cls, request_cls, metric_cls = _engines()
    clock = {"t": 0}
    bound = plan.alert_error_rate if plan.alert_error_rate is not None else 1.0
    router = skill_router_cls(health_bound=bound, clock=lambda: float(clock["t"]))
    for agent in scenario.agents:
        router.register_agent(agent.id, agent.capabilities, capacity=plan.capacities[agent.id])
    for skill in scenario.skills:
        router.register_skill(skill.id, plan.risk_levels[skill.id], skill.required_capabilities)
    specs = {a.id: a for a in scenario.agents}
    true_risk = {s.id: s.risk_level for s in scenario.skills}
    arrivals = sorted(scenario.requests, key=lambda r: (r.at, r.seq))
    running: dict[str, list[Execution]] = {a.id: [] for a in scenario.agents}
    recent: dict[str, deque[bool]] = {a.id: deque(maxlen=plan.alert_window)
                                      for a in scenario.agents}
    out = Replay()
    queue: list[Request] = []
    next_arrival = 0
    t = 0
    for _ in range(MAX_STEPS):
        clock["t"] = t
        for agent_id, active in running.items():
            for execution in [e for e in active if e.end <= t]:
                active.remove(execution)
                recent[agent_id].append(execution.success)
                window = recent[agent_id]
                rate = (window.count(False) / len(window)
                        if len(window) >= plan.alert_min_executions else 0.0)
                router.set_health(agent_id, rate)
                if rate > bound and agent_id not in out.drained:
                    out.drained[agent_id] = t
        while next_arrival < len(arrivals) and arrivals[next_arrival].at <= t:
            queue.append(arrivals[next_arrival])
            next_arrival += 1
        queue.sort(key=lambda r: (-r.priority, r.at, r.seq))
        waiting = []
        for request in queue:
            for agent_id, active in running.items():
                router.set_load(agent_id, len(active))
            result = router.route(request_cls(skill_id=request.skill, reserve=False))
            if result.agent_id is None:
                out.unroutable.append((request, result.reason))
                continue
            choice = next((a for a in (result.agent_id, *result.fallback_agents)
                           if len(running[a]) < plan.capacities[a]), None)
            if choice is None:
                waiting.append(request)
                continue
            success = not specs[choice].fails_at(t)
            execution = Execution(request, choice, result.decision.value, t, t + request.duration,
                                  success)
            running[choice].append(execution)
            out.executions.append(execution)
            if len(running[choice]) > out.peak.get(choice, (0, 0))[0]:
                out.peak[choice] = (len(running[choice]), t)
            out.records.append(metric_cls.from_json({
                "id": f"{scenario.id}-{request.seq}",
                "timestamp": (EPOCH + timedelta(seconds=t)).isoformat(),
                "skill": request.skill, "agent": choice, "risk_level": true_risk[request.skill],
                "decision": result.decision.value, "success": success,
                "error_type": None if success else "agent_failure",
                "latency_ms": (request.latency_ms if request.latency_ms is not None
                               else request.duration * 1000),
                "source": f"scenario:{scenario.id}"}, where=f"replay step {request.seq}"))
        queue = waiting
        if next_arrival >= len(arrivals) and not queue and not any(running.values()):
            break
        t += 1
    else:
        raise CvfError(f"scenario {scenario.id}: the replay did not finish in {MAX_STEPS} steps")
    return out


def grade_scenario(scenario: Scenario, plan: Plan, rubric: Rubric) -> ScenarioResult:
    weights = {c.id: c.weight for c in rubric.criteria}
    missing = sorted({o.kind for o in scenario.objectives} - set(weights))
    if missing:
        raise CvfError(f"rubric {rubric.level} has no criterion for objective kind "
                       f"{', '.join(missing)}", hint="add a criterion with that id and a weight")
    run = replay(scenario, plan)
    specs = {a.id: a for a in scenario.agents}
    true_risk = {s.id: s.risk_level for s in scenario.skills}
    results = []
    for objective in scenario.objectives:
        met, detail = _check(objective, run, specs, true_risk, plan)
        results.append(ObjectiveResult(objective.id, objective.kind, objective.text, met, detail,
                                       weights[objective.kind]))
    total = sum(r.weight for r in results)
    earned = sum(r.weight for r in results if r.met)
    failures = sum(1 for r in run.records if not r.success)
    return ScenarioResult(scenario.id, percent(earned, total), tuple(results), len(run.records),
                          failures)


def _check(objective: ObjectiveSpec, run: Replay, specs: dict[str, AgentSpec],
           true_risk: dict[str, str], plan: Plan) -> tuple[bool, str]:
    if objective.kind == "no_auto_execute":
        floor = RISKS.index(objective.risk_at_least)
        bad = [e for e in run.executions
               if RISKS.index(true_risk[e.request.skill]) >= floor and e.decision in AUTOMATIC]
        if bad:
            skills = sorted({e.request.skill for e in bad})
            return False, (f"{len(bad)} execution(s) of {', '.join(skills)} "
                           f"(risk {objective.risk_at_least} or above) ran without a person "
                           f"(decision {bad[0].decision} at t={bad[0].start}s)")
        return True, f"every {objective.risk_at_least}+ execution waited for a person"
    if objective.kind == "within_capacity":
        over = [(agent, peak, at) for agent, (peak, at) in sorted(run.peak.items())
                if peak > specs[agent].capacity]
        if over:
            agent, peak, at = over[0]
            return False, (f"{agent} ran {peak} at once at t={at}s; its real capacity is "
                           f"{specs[agent].capacity}")
        return True, "no agent ever ran more than its real capacity"
    if objective.kind == "error_budget":
        total = len(run.records)
        failed = sum(1 for r in run.records if not r.success)
        rate = failed / total if total else 0.0
        drained = ", ".join(f"{a} at t={t}s" for a, t in sorted(run.drained.items())) or "none"
        text = (f"{failed} of {total} executions failed ({rate:.1%}); budget "
                f"{objective.max_error_rate:.1%}; agents drained: {drained}")
        return rate <= objective.max_error_rate, text
    if objective.kind == "all_routed":
        if run.unroutable:
            request, reason = run.unroutable[0]
            return False, (f"{len(run.unroutable)} request(s) found no agent, e.g. "
                           f"{request.skill} at t={request.at}s: {reason}")
        return True, "every request was placed on an agent"
    if objective.kind == "diagnosis":
        return _diagnosis(objective, run, plan)
    if objective.kind == "latency_verdict":
        return _latency_verdict(objective, run, plan)
    raise CvfError(f"unknown objective kind '{objective.kind}'")


def _diagnosis(objective: ObjectiveSpec, run: Replay, plan: Plan) -> tuple[bool, str]:
    """The incident as the execution records tell it: the agent with the most failed
    executions, and the trace second of its first failure. The candidate must name both
    (the second within ``tolerance``), or say ``none`` when nothing failed."""
    failed: dict[str, list[int]] = {}
    for record in run.records:
        if not record.success:
            moment = int((record.timestamp - EPOCH).total_seconds())
            failed.setdefault(record.agent, []).append(moment)
    said = str(plan.diagnosis.get("agent") or "").strip()
    if not failed:
        return (said.lower() == "none",
                "no execution failed" + ("" if said.lower() == "none" else
                                         f"; the diagnosis names {said or 'no agent'}, "
                                         f"expected none"))
    culprit = max(sorted(failed), key=lambda a: len(failed[a]))
    start = min(failed[culprit])
    stated = plan.diagnosis.get("failing_from")
    if said != culprit:
        return False, (f"the records show {culprit} failing {len(failed[culprit])} execution(s) "
                       f"from t={start}s; the diagnosis names {said or 'no agent'}")
    if stated is None or abs(int(stated) - start) > objective.tolerance:
        return False, (f"{culprit} is right, but its first failure is at t={start}s; the "
                       f"diagnosis says {'nothing' if stated is None else f't={stated}s'} "
                       f"(within {objective.tolerance}s counts)")
    return True, f"{culprit} failing from t={start}s, as the records show"


LATENCY_DEFAULTS = {"window": "5m", "trailing": "30m", "bucket": "5m", "z_threshold": 3.0,
                    "min_buckets": 6, "min_ratio": 1.5}


def _latency_verdict(objective: ObjectiveSpec, run: Replay, plan: Plan) -> tuple[bool, str]:
    """Feed the replay's records to the metrics engine and ask its latency-anomaly test
    about the end of the trace; the candidate's verdict must agree with it."""
    from bot.metrics.alerts import latency_alerts
    from bot.metrics.store import open_store

    settings = LATENCY_DEFAULTS | (objective.latency or {})
    store = open_store(":memory:")
    try:
        store.add_many(run.records)
        last = max((int((r.timestamp - EPOCH).total_seconds()) for r in run.records),
                   default=0)
        end = int(EPOCH.timestamp()) + (last // 60 + 1) * 60
        fired = latency_alerts(store, settings, end)
    finally:
        store.close()
    truth = "anomaly" if fired else "normal"
    said = str(plan.diagnosis.get("latency") or "").strip().lower()
    why = fired[0].reason if fired else (
        f"the metrics engine finds no latency anomaly at the end of the trace "
        f"(z ≥ {settings['z_threshold']} and {settings['min_ratio']}x the normal mean needed)")
    if said == truth:
        return True, f"{truth}, as the metrics engine finds: {why}"
    return False, f"the diagnosis says {said or 'nothing'}; the engine finds {truth}: {why}"
