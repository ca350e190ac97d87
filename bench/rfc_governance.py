"""RFC governance at scale: a big tally, and a tick over many open RFCs.

Run: ``python bench/rfc_governance.py [--reactions N] [--comments N] [--rfcs N]
[--simulator]``. Prints wall time and GitHub API calls for:

1. the pure tally of N reactions + N comments (``bot.rfc.tally``),
2. one full sync of an RFC pull request carrying them (handler + in-memory GitHub, which
   counts requests as the real adapter pages them: 100 items per page),
3. a tick over N open RFCs when nothing is due (the scheduled workflow's usual case),
   and when every period has ended (N transitions to review),
4. with ``--simulator``: the same tick through real PyGithub over HTTP to the local
   GitHub simulator (API calls counted by the simulator itself).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import parse_config  # noqa: E402
from bot.handlers import rfc as handler  # noqa: E402
from bot.rfc.tally import COMMENT_SOURCE, REACTION_SOURCE, Signal, VoteRule, tally  # noqa: E402
from tests.fake_github import FakeGitHub  # noqa: E402
from tests.rfc_samples import rfc_text  # noqa: E402

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONFIG = parse_config("rfc:\n  committee:\n    users: [alice, bob, carol, dave, erin]\n")
OPTIONS = ("approve", "request_changes", "reject", "abstain")
CONTENTS = ("+1", "-1", "confused", "eyes", "heart", "rocket")



def proposal(number: int) -> str:
    return rfc_text(number, title=f"Proposal {number}")


def path_of(number: int) -> str:
    return f"rfcs/{number:04d}-proposal-{number}.md"


def bench_pure(reactions: int, comments: int) -> None:
    rng = random.Random(7)
    signals = [Signal(f"user{rng.randrange(reactions // 2)}", rng.choice(OPTIONS),
                      T0 + timedelta(seconds=i), REACTION_SOURCE, i) for i in range(reactions)]
    signals += [Signal(f"user{rng.randrange(reactions // 2)}", rng.choice(OPTIONS),
                       T0 + timedelta(seconds=i), COMMENT_SOURCE, 10**6 + i, "reason")
                for i in range(comments)]
    committee = {f"user{i}" for i in range(50)}
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        result = tally(signals, rule=VoteRule(), is_binding=lambda u: u in committee,
                       period_ends=T0 + timedelta(hours=2), binding_voters=sorted(committee))
        best = min(best, time.perf_counter() - start)
    print(f"tally (pure): {reactions:,} reactions + {comments:,} vote comments -> "
          f"{len(result.voters):,} voters in {best * 1000:.1f} ms (best of 3); "
          f"0 GitHub API calls")


def bench_sync(reactions: int, comments: int) -> None:
    gh = FakeGitHub(now=T0 - timedelta(days=1))
    pull = gh.add_pull(author="writer", files={path_of(5): proposal(5)}, head_ref="rfc-5")
    gh.add_comment(pull.number, "writer", "/rfc open", created_at=T0)
    rng = random.Random(11)
    users = [f"user{i}" for i in range(reactions // 4)] + ["alice", "bob", "carol"]
    made = 0
    while made < reactions:
        user = rng.choice(users)
        before = len(gh.issue_reactions.get(pull.number, []))
        gh.add_reaction(user, rng.choice(CONTENTS), number=pull.number,
                        created_at=T0 + timedelta(seconds=made))
        made += len(gh.issue_reactions[pull.number]) - before
    for i in range(comments):
        word = rng.choice(("approve", "reject", "abstain", "request-changes"))
        body = f"/vote {word} reason {i}" if i % 2 else f"Some discussion, point {i}."
        gh.add_comment(pull.number, rng.choice(users), body,
                       created_at=T0 + timedelta(seconds=i + 1))
    gh.stats.requests = gh.stats.writes = 0
    start = time.perf_counter()
    result = handler.sync(gh, CONFIG, pull.number, now=T0 + timedelta(days=1),
                          refresh_check=True)
    elapsed = time.perf_counter() - start
    print(f"sync of one RFC PR with {reactions:,} reactions + {comments:,} comments: "
          f"{elapsed * 1000:.0f} ms, {gh.stats.requests} GitHub API calls "
          f"({gh.stats.writes} writes); state {result.state}")


def seed_open_rfcs(gh: FakeGitHub, count: int) -> list[int]:
    numbers = []
    for i in range(count):
        pull = gh.add_pull(author="writer", files={path_of(100 + i): proposal(100 + i)},
                           head_ref=f"rfc-{100 + i}")
        gh.add_reaction("alice", "+1", number=pull.number, created_at=T0)
        comment = gh.add_comment(pull.number, "writer", "/rfc open", created_at=T0)
        handler.sync(gh, CONFIG, pull.number, now=T0, trigger=comment.id)
        numbers.append(pull.number)
    return numbers


def bench_tick(count: int) -> None:
    gh = FakeGitHub(now=T0 - timedelta(days=1))
    seed_open_rfcs(gh, count)
    for label, at in (("nothing due", T0 + timedelta(days=3)),
                      ("all periods ended", T0 + timedelta(days=15)),
                      ("again, idempotent", T0 + timedelta(days=15, minutes=5))):
        gh.stats.requests = gh.stats.writes = 0
        start = time.perf_counter()
        report = handler.tick_repository(gh, CONFIG, at)
        elapsed = time.perf_counter() - start
        moved = sum(1 for r in report.synced for e in r.new_entries
                    if e.from_state != e.to_state)
        print(f"tick over {count} open RFCs ({label}): {elapsed * 1000:.0f} ms, "
              f"{gh.stats.requests} GitHub API calls ({gh.stats.writes} writes), "
              f"{moved} moved to review")


def bench_tick_simulator(count: int) -> None:
    from bot.github.auth import credentials_from_env
    from bot.github.factory import AdapterFactory
    from tests.ghsim import GitHubSimulator
    from tests.ghsim import server as ghsim_server
    from tests.ghsim.state import World

    # TCP_NODELAY: without it each request waits ~40 ms for a delayed ACK.
    ghsim_server._Handler.disable_nagle_algorithm = True

    clock = {"now": T0}
    with GitHubSimulator(world=World(clock=lambda: clock["now"]), log_limit=None) as sim:
        repo = sim.repo("octo-org/governance")
        env = {"GITHUB_API_URL": sim.base_url, "GITHUB_TOKEN": "ghs_bench"}
        factory = AdapterFactory(credentials_from_env(CONFIG.section("github"), env),
                                 api_url=sim.base_url, bot_login="cvf-governance[bot]",
                                 seconds_between_writes=None)
        gh = factory("octo-org/governance")
        for i in range(count):
            pull = repo.add_pull(author="writer", files={path_of(100 + i): proposal(100 + i)},
                                 head_ref=f"rfc-{100 + i}")
            comment = repo.add_comment(pull.number, "writer", "/rfc open")
            handler.sync(gh, CONFIG, pull.number, now=T0, trigger=comment.id)
        for label, at in (("nothing due", T0 + timedelta(days=3)),
                          ("all periods ended", T0 + timedelta(days=15))):
            clock["now"] = at
            sim.reset_log()
            gh = factory("octo-org/governance")
            start = time.perf_counter()
            handler.tick_repository(gh, CONFIG, at)
            elapsed = time.perf_counter() - start
            print(f"tick over {count} open RFCs via PyGithub + simulator ({label}): "
                  f"{elapsed:.2f} s, {len(sim.requests)} API calls "
                  f"({len(sim.writes())} writes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reactions", type=int, default=10_000)
    parser.add_argument("--comments", type=int, default=2_000)
    parser.add_argument("--rfcs", type=int, default=100)
    parser.add_argument("--simulator", action="store_true",
                        help="also tick through PyGithub and the local GitHub simulator")
    args = parser.parse_args()
    bench_pure(args.reactions, args.comments)
    bench_sync(args.reactions, args.comments)
    bench_tick(args.rfcs)
    if args.simulator:
        bench_tick_simulator(args.rfcs)


if __name__ == "__main__":
    main()
