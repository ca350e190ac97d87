"""Routing throughput: the indexed SkillRouter against a plain linear scan, in one run.

    python bench/routing.py [--agents 10000] [--skills 1000] [--requests 20000]

Two scans are measured:
- "linear scan": the same SkillRouter with the index switched off (every request checks
  every agent, then ranks the capable ones); same results, same reasons, same reservations.
  This isolates what the index buys and is the figure the >= 20x target is checked on.
- "tuned scan": a bare-bones scan using C-level set operations and no explanations; the
  fastest linear code we could write, printed for context.

All routers see the same agents, skills, loads and request stream, reserve load on each
assignment (so every decision changes the next), and must pick the same agents and
fallbacks; the script checks that before printing decisions/s.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.routing import RoutingRequest, SkillRouter  # noqa: E402
from bot.routing.model import Agent  # noqa: E402


class ScanningSkillRouter(SkillRouter):
    """SkillRouter without its index: ranks by looking at every registered agent."""

    def _rank(self, required, constraints, now):  # type: ignore[no-untyped-def]
        at = datetime.fromtimestamp(now, UTC)
        return self._rank_set(self.agents.keys(), required, constraints, lambda: at, 4)


class LinearRouter:
    """The obvious implementation: look at every agent for every request."""

    def __init__(self, health_bound: float = 0.2) -> None:
        self.health_bound = health_bound
        self.agents: list[Agent] = []
        self.pending: dict[str, int] = {}
        self.skills: dict[str, tuple[str, ...]] = {}

    def register_agent(self, agent_id: str, capabilities: list[str], capacity: float,
                       load: float, error_rate: float) -> None:
        self.agents.append(Agent(id=agent_id, capabilities=frozenset(capabilities),
                                 capacity=capacity, load=load, error_rate=error_rate))

    def route(self, skill_id: str) -> tuple[str | None, list[str]]:
        required = self.skills[skill_id]
        capable = [a for a in self.agents if a.capabilities.issuperset(required)]

        def key(a: Agent) -> tuple[int, float, str]:
            return (1 if a.error_rate > self.health_bound else 0,
                    (a.load + self.pending.get(a.id, 0)) / a.capacity, a.id)

        best = heapq.nsmallest(4, capable, key=key)
        if not best:
            return None, []
        self.pending[best[0].id] = self.pending.get(best[0].id, 0) + 1
        return best[0].id, [a.id for a in best[1:]]


def build(n_agents: int, n_skills: int, n_caps: int, seed: int):
    rng = random.Random(seed)
    caps = [f"cap-{i}" for i in range(n_caps)]
    indexed = SkillRouter(clock=lambda: 0.0)
    scanning = ScanningSkillRouter(clock=lambda: 0.0)
    linear = LinearRouter()
    for i in range(n_agents):
        agent_caps = rng.sample(caps, rng.randint(3, 8))
        capacity = float(rng.choice([1, 2, 4, 8]))
        load = float(rng.randint(0, int(capacity)))
        error_rate = 0.5 if rng.random() < 0.05 else rng.random() * 0.1
        for router in (indexed, scanning):
            router.register_agent(f"agent-{i:05d}", agent_caps, capacity=capacity, load=load)
            router.set_health(f"agent-{i:05d}", error_rate)
        linear.register_agent(f"agent-{i:05d}", agent_caps, capacity, load, error_rate)
    for s in range(n_skills):
        required = rng.sample(caps, rng.choice([1, 1, 2, 2, 3]))
        level = "R" + rng.choice("0123")
        indexed.register_skill(f"skill-{s:04d}", level, required)
        scanning.register_skill(f"skill-{s:04d}", level, required)
        linear.skills[f"skill-{s:04d}"] = tuple(sorted(required))
    stream = [f"skill-{rng.randrange(n_skills):04d}" for _ in range(200_000)]
    return indexed, scanning, linear, stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--skills", type=int, default=1_000)
    parser.add_argument("--capabilities", type=int, default=60)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--linear-requests", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--sweep", action="store_true",
                        help="Also show indexed decisions/s at 1k, 10k and 50k agents.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    indexed, scanning, tuned, stream = build(args.agents, args.skills, args.capabilities,
                                             args.seed)
    print(f"setup: {args.agents} agents, {args.skills} skills, {args.capabilities} capabilities "
          f"in {time.perf_counter() - started:.2f}s")

    check = args.linear_requests
    requests = [RoutingRequest(skill_id=s) for s in stream[:args.requests]]
    # Interleave the three in rounds so a busy machine slows them alike and the ratio holds.
    rounds = args.rounds
    scan_results, tuned_picks, indexed_results = [], [], []
    scan_time = tuned_time = indexed_time = 0.0
    for r in range(rounds):
        lo, hi = check * r // rounds, check * (r + 1) // rounds
        t0 = time.perf_counter()
        scan_results += [scanning.route(q) for q in requests[lo:hi]]
        t1 = time.perf_counter()
        tuned_picks += [tuned.route(s) for s in stream[lo:hi]]
        t2 = time.perf_counter()
        ilo, ihi = len(requests) * r // rounds, len(requests) * (r + 1) // rounds
        indexed_results += [indexed.route(q) for q in requests[ilo:ihi]]
        t3 = time.perf_counter()
        scan_time += t1 - t0
        tuned_time += t2 - t1
        indexed_time += t3 - t2
    for i in range(check):
        got = indexed_results[i]
        want = scan_results[i]
        agent, fallbacks = tuned_picks[i]
        if (got.agent_id, got.fallback_agents, got.reason) != (
                want.agent_id, want.fallback_agents, want.reason) or (
                got.agent_id, list(got.fallback_agents)) != (agent, fallbacks):
            print(f"MISMATCH at request {i}: indexed {got.agent_id} {got.fallback_agents}, "
                  f"scan {want.agent_id} {want.fallback_agents}, tuned {agent} {fallbacks}")
            sys.exit(1)

    scan_rate = check / scan_time
    tuned_rate = check / tuned_time
    indexed_rate = len(requests) / indexed_time
    speedup = indexed_rate / scan_rate
    print(f"all three agree on the first {check} decisions (agent, fallbacks, reason)")
    print(f"linear scan : {scan_rate:10,.0f} decisions/s ({check} requests)")
    print(f"tuned scan  : {tuned_rate:10,.0f} decisions/s ({check} requests, no explanations)")
    print(f"indexed     : {indexed_rate:10,.0f} decisions/s ({len(requests)} requests)")
    print(f"speedup     : {speedup:.1f}x over the linear scan (target >= 20x) -> "
          f"{'OK' if speedup >= 20 else 'MISS'}; {indexed_rate / tuned_rate:.1f}x over the "
          f"tuned scan")
    if args.sweep:
        for size in (1_000, 10_000, 50_000):
            router, _, _, sizes_stream = build(size, args.skills, args.capabilities, args.seed)
            batch = [RoutingRequest(skill_id=s) for s in sizes_stream[:args.requests]]
            for skill_id in router.skills:  # build each skill's pool first: steady state
                router.route(RoutingRequest(skill_id=skill_id, reserve=False))
            t0 = time.perf_counter()
            for q in batch:
                router.route(q)
            rate = len(batch) / (time.perf_counter() - t0)
            print(f"sweep       : {size:6,} agents -> {rate:10,.0f} decisions/s (indexed, "
                  f"pools built)")
    sys.exit(0 if speedup >= 20 else 1)


if __name__ == "__main__":
    main()
