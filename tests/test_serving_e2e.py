"""Slow clients and open metrics streams cannot starve deliveries (issue #14).

The README's production command — gunicorn with bot/gunicorn_conf.py — in front of the
GitHub simulator, attacked by 64 clients that send one header line per second and 32
open ``GET /api/metrics/stream`` connections. A signed ping is still answered in under a
second, and a burst of deliveries keeps its throughput. (With the former design, 2
gthread workers of 8 threads, the ping was not answered within 30 s.) The figures for
the full attack (a burst of 200) come from ``python bench/attacks.py serving``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ghsim import GitHubSimulator
from tests.serving import Attackers, Gunicorn, burst, comment_deliveries, ping

pytestmark = pytest.mark.e2e

REPO = "Codertocat/Hello-World"
ISSUES = list(range(1, 21))


@pytest.fixture
def bot() -> Iterator[Gunicorn]:
    with GitHubSimulator(log_limit=1000) as sim:
        repo = sim.repo(REPO, default_branch="master")
        for n in ISSUES:
            repo.add_issue(n, title=f"Issue {n}", author="Codertocat")
        with Gunicorn(sim.base_url) as server:
            yield server


def test_slow_clients_and_open_streams_do_not_stall_deliveries(bot: Gunicorn) -> None:
    burst(bot.port, comment_deliveries(20, ISSUES))  # warm up both workers
    before = burst(bot.port, comment_deliveries(100, ISSUES))
    attack = Attackers(bot.port, slow=64, streams=32)
    try:
        pings = [ping(bot.port, timeout=10) for _ in range(5)]
        under = burst(bot.port, comment_deliveries(100, ISSUES))
        pings += [ping(bot.port, timeout=10) for _ in range(5)]
        streams = attack.open_streams()
    finally:
        attack.close()
    assert max(pings) < 1.0, pings
    assert streams == 32  # the streams really were open all along
    assert under >= 0.5 * before, (before, under)
    assert "Traceback" not in bot.log()
