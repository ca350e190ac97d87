"""Conditional requests (issue 15): a repeated read is revalidated with If-None-Match and,
when GitHub answers 304, costs no rate-limit point — and still returns the fresh truth."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bot.app import create_app
from bot.config import parse_config
from bot.events import Router
from bot.github.adapter import PyGithubAdapter
from bot.github.auth import TokenCredentials
from bot.github.conditional import Answer, EtagCache, EtagCaches
from bot.github.factory import AdapterFactory
from tests.conftest import LocalServer, load_payload, post_webhook
from tests.ghsim import GitHubSimulator

REPO = "octo-org/governance"


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    with GitHubSimulator() as started:
        repo = started.repo(REPO)
        repo.add_pull(1, title="RFC: conditional", files={"rfcs/0001-x.md": "x"})
        for i in range(130):  # two pages at per_page=100
            repo.add_comment(1, "alice", f"comment {i}")
        yield started
        assert started.errors == []


def _adapter(sim: GitHubSimulator, etags: EtagCache) -> PyGithubAdapter:
    return PyGithubAdapter(REPO, token="t", api_url=sim.base_url, etags=etags,
                           seconds_between_writes=None, sleeper=lambda _: None)


def test_a_repeated_read_is_answered_304_and_costs_no_point(sim: GitHubSimulator) -> None:
    etags = EtagCache()
    first = _adapter(sim, etags)
    comments = first.list_issue_comments(1)
    assert len(comments) == 130
    assert first.stats.requests == 2 and first.stats.points == 2
    sim.reset_log()
    second = _adapter(sim, etags)  # the next delivery, same installation
    again = second.list_issue_comments(1)
    assert [c.body for c in again] == [c.body for c in comments]
    assert second.stats.requests == 2 and second.stats.points == 0
    assert second.stats.not_modified == 2 and second.stats.rate_remaining == 5000 - 2
    assert [r.status for r in sim.requests] == [304, 304]
    assert sim.points() == 0


def test_a_changed_resource_is_read_fresh(sim: GitHubSimulator) -> None:
    etags = EtagCache()
    _adapter(sim, etags).list_issue_comments(1)
    sim.repo(REPO).add_comment(1, "bob", "/vote approve")
    later = _adapter(sim, etags)
    bodies = [c.body for c in later.list_issue_comments(1)]
    assert bodies[-1] == "/vote approve" and len(bodies) == 131
    assert later.stats.points >= 1


def test_pull_request_file_contents_and_reactions_are_revalidated(
        sim: GitHubSimulator) -> None:
    repo = sim.repo(REPO)
    repo.put_file("rfcs/0001-x.md", "---\ntitle: X\n---\n")
    repo.add_reaction("carol", "+1", number=1)
    etags = EtagCache()
    reads = [lambda a: a.get_pull(1), lambda a: a.get_file("rfcs/0001-x.md"),
             lambda a: a.list_issue_reactions(1)]
    before = [read(_adapter(sim, etags)) for read in reads]
    adapter = _adapter(sim, etags)
    assert [read(adapter) for read in reads] == before
    assert adapter.stats.points == 0 and adapter.stats.not_modified == adapter.stats.requests


def test_the_server_factory_keeps_one_cache_per_installation(sim: GitHubSimulator) -> None:
    factory = AdapterFactory(TokenCredentials("t"), api_url=sim.base_url, bot_login="bot")
    one = factory(REPO)
    one.list_issue_comments(1)
    two = factory(REPO)
    two.list_issue_comments(1)
    assert two.stats.points == 0 and two.stats.not_modified == 2
    assert factory.etags.for_installation(7) is not factory.etags.for_installation("token")


def test_the_cache_is_bounded_in_bytes_least_recently_used_first() -> None:
    cache = EtagCache(max_bytes=10)
    for name in "abc":
        cache.put((name, ""), Answer('"e"', {}, b"1234", None))
    assert len(cache) == 2 and cache.size == 8 and cache.get(("a", "")) is None
    cache.get(("b", ""))
    cache.put(("d", ""), Answer('"e"', {}, b"1234", None))
    assert cache.get(("b", "")) is not None and cache.get(("c", "")) is None
    cache.put(("huge", ""), Answer('"e"', {}, b"x" * 11, None))
    assert cache.get(("huge", "")) is None


def test_installations_are_bounded() -> None:
    caches = EtagCaches(installations=2)
    first = caches.for_installation(1)
    caches.for_installation(2)
    caches.for_installation(3)
    assert caches.for_installation(1) is not first


def _listing_handler(event: Any, github: Any) -> None:
    github.list_issue_comments(event.payload["issue"]["number"])


@pytest.mark.usefixtures("delivery_logs_flow")
def test_the_delivery_log_counts_points_apart_from_requests(
        sim: GitHubSimulator, caplog: pytest.LogCaptureFixture) -> None:
    sim.repo(REPO).put_file(".github/cvf.yml", "")
    factory = AdapterFactory(TokenCredentials("t"), api_url=sim.base_url, bot_login="bot",
                             seconds_between_writes=None)
    router = Router()
    router.register("issue_comment", "created")(_listing_handler)
    app = create_app(parse_config(""), github_factory=factory, router=router,
                     env={"CVF_WEBHOOK_SECRET": "s"}, recent_deliveries=0)
    app.testing = True
    payload = load_payload("issue_comment", "created")
    payload["repository"]["full_name"] = REPO
    payload["issue"]["number"] = 1
    payload.pop("installation", None)
    caplog.set_level(logging.INFO, logger="cvf.webhook")
    server = LocalServer(app)
    try:
        for delivery in ("first", "second"):
            status, _ = post_webhook(server.url, "issue_comment", payload, secret="s",
                                     delivery=delivery)
            assert status == 200
    finally:
        server.close()
    lines = {line["delivery"]: line for line in
             (json.loads(r.getMessage()) for r in caplog.records if r.name == "cvf.webhook")}
    first, second = lines["first"], lines["second"]
    assert first["api_calls"] == first["points"] == 3  # the config and two comment pages
    assert second["api_calls"] == second["not_modified"] == 2  # the config is kept
    assert second["points"] == 0


@pytest.mark.parametrize("link_on_304", [True, False])
def test_a_full_last_page_that_gained_a_next_page_is_not_read_as_the_end(
        link_on_304: bool) -> None:
    """100 comments fill page 1 exactly; the 101st goes on a new page 2 while page 1's
    body (and ETag) stays the same. A kept "no next page" must not hide it, whether or not
    GitHub's 304 repeats the Link header."""
    with GitHubSimulator() as sim:
        sim.link_on_304 = link_on_304
        repo = sim.repo(REPO)
        repo.add_pull(1, title="RFC: conditional", files={"rfcs/0001-x.md": "x"})
        for i in range(100):
            repo.add_comment(1, "alice", f"comment {i}")
        etags = EtagCache()
        assert len(_adapter(sim, etags).list_issue_comments(1)) == 100
        repo.add_comment(1, "bob", "/vote approve")
        later = _adapter(sim, etags)
        bodies = [c.body for c in later.list_issue_comments(1)]
        assert len(bodies) == 101 and bodies[-1] == "/vote approve"
        # And a page that was not full is still revalidated for free.
        sim.reset_log()
        again = _adapter(sim, etags)
        assert len(again.list_issue_comments(1)) == 101
        assert again.stats.points == 0
        assert sim.errors == []
