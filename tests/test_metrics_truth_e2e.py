"""End to end, the CVF loop tells the truth: 50 pull requests at R0–R3 routed by the webhook
app (real WSGI server on 127.0.0.1, real PyGithub over HTTP to the GitHub simulator), each
delivered two or three times, approvals granted, rejected and left pending; agents report
500 executions through ``POST /api/executions``. The report's decisions, approvals and
executions equal a count made by hand, no author and no placeholder is an agent, and
alerts fire on real failures only, naming the skill."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.config import parse_config
from bot.github.auth import TokenCredentials
from bot.github.factory import AdapterFactory
from bot.metrics.alerts import evaluate
from bot.metrics.store import open_store
from tests.conftest import LocalServer
from tests.ghsim import GitHubSimulator
from tests.test_routing_e2e import BOT, REPO, SECRET, Bot

pytestmark = pytest.mark.e2e

TOKEN = "truth-api-token"
ROUTING = """\
rfc:
  committee: {users: [chair]}
routing:
  agents:
    - {id: executor-1, capabilities: [deploy, execute]}
    - {id: doc-bot, capabilities: [write]}
  skills:
    - {id: docs, risk_level: R0, required_capabilities: [write], paths: [docs/]}
    - {id: app-code, risk_level: R1, required_capabilities: [execute], paths: [src/]}
    - {id: deploy-prod, risk_level: R2, required_capabilities: [deploy], paths: [deploy/]}
    - {id: workflows, risk_level: R3, required_capabilities: [execute],
       paths: [.github/workflows/]}
  roles:
    approval_manager: {users: [rita]}
"""
FILES = {"R0": "docs/page-{i}.md", "R1": "src/mod_{i}.py", "R2": "deploy/env-{i}.yml",
         "R3": ".github/workflows/ci-{i}.yml"}
DECISION = {"R0": "auto_execute", "R1": "scope_guard", "R2": "approval_required",
            "R3": "human_intervention"}


class Loop(Bot):
    """The routing e2e's bot (signed deliveries over HTTP), plus the metrics API."""

    def api(self, method: str, path: str, body: bytes | None = None) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method,
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())


@pytest.fixture
def loop(ghsim: GitHubSimulator, tmp_path: Path) -> Iterator[Loop]:
    store = tmp_path / "metrics.db"
    repo = ghsim.repo(REPO)
    # The repository's config routes; the host's names the same store for the API.
    repo.put_file(".github/cvf.yml", ROUTING + f"metrics:\n  store: {store}\n")
    ghsim.set_token("bot-token", BOT)
    factory = AdapterFactory(TokenCredentials("bot-token"), api_url=ghsim.base_url,
                             bot_login=BOT, attempts=1, max_wait=1,
                             seconds_between_writes=None)
    app = create_app(parse_config(f"metrics:\n  store: {store}\n"), github_factory=factory,
                     env={"CVF_WEBHOOK_SECRET": SECRET, "CVF_API_TOKEN": TOKEN})
    server = LocalServer(app)
    try:
        yield Loop(ghsim, repo, server.url)
    finally:
        server.close()


def test_fifty_pull_requests_and_500_executions_are_counted_as_they_happened(
        loop: Loop, tmp_path: Path) -> None:
    hand: dict[str, Any] = {"by_risk": dict.fromkeys(FILES, 0), "granted": 0, "rejected": 0,
                            "pending": set()}
    authors = set()
    for i in range(50):
        level = ("R0", "R1", "R2", "R3")[i % 4]
        author = f"author-{i % 7}"
        authors.add(author)
        pr = loop.repo.add_pull(author=author, files={FILES[level].format(i=i): "x"})
        hand["by_risk"][level] += 1
        # Two or three deliveries of the same head: a redelivery and another event.
        loop.deliver("pull_request", "opened", pr.number, sender=author)
        loop.deliver("pull_request", "opened", pr.number, sender=author)
        if i % 3 == 0:
            loop.deliver("pull_request", "ready_for_review", pr.number, sender=author)
        outcome = (i // 4) % 3  # for R2/R3: 0 granted, 1 rejected, 2 left pending
        if level == "R2" and outcome < 2:
            loop.repo.add_review(pr.number, "rita",
                                 "APPROVED" if outcome == 0 else "CHANGES_REQUESTED",
                                 body="" if outcome == 0 else "not like this",
                                 commit_id=pr.pull.head_sha)
            loop.deliver("pull_request_review", "submitted", pr.number, sender="rita")
            loop.deliver("pull_request_review", "submitted", pr.number, sender="rita")
        elif level == "R3" and outcome == 0:
            ok = loop.repo.add_comment(pr.number, "chair", "/approve-risk reviewed the pins")
            loop.deliver("issue_comment", "created", pr.number, sender="chair",
                         comment={"id": ok.id, "body": ok.body, "user": {"login": "chair"}})
        elif level == "R3" and outcome == 1:
            loop.repo.add_review(pr.number, "chair", "CHANGES_REQUESTED", body="no",
                                 commit_id=pr.pull.head_sha)
            loop.deliver("pull_request_review", "submitted", pr.number, sender="chair")
        if level in ("R2", "R3"):
            if outcome == 0:
                hand["granted"] += 1
            elif outcome == 1:
                hand["rejected"] += 1
            else:
                hand["pending"].add(pr.number)

    # Waiting pull requests asked the approver role's members for a review.
    for number in hand["pending"]:
        pull = loop.repo.pull(number)
        wanted = ["rita"] if "deploy/" in str(pull.files) else ["chair"]
        assert pull.requested_reviewers == wanted

    # Agents report 500 executions through the API; 10 of them fail (2%: healthy).
    now = datetime.now(UTC)
    skills = ("docs", "app-code", "deploy-prod", "workflows")
    agents = ("executor-1", "executor-2", "doc-bot")
    executions = [{"id": f"run-{n}", "timestamp": (now - timedelta(seconds=6 * n)).isoformat(),
                   "skill": skills[n % 4], "agent": agents[n % 3],
                   "risk_level": ("R0", "R1", "R2", "R3")[n % 4], "decision": "auto_execute",
                   "success": n % 50 != 7, "error_type": "timeout" if n % 50 == 7 else None,
                   "latency_ms": 800 + (n % 13) * 10}
                  for n in range(500)]
    for start in range(0, 500, 100):
        body = "\n".join(json.dumps(e) for e in executions[start:start + 100]).encode()
        assert loop.api("POST", "/api/executions", body)["added"] == 100

    view = loop.api("GET", "/api/metrics?period=24h")
    decisions = view["decisions"]
    assert decisions["total"] == 50  # one per head and decision, however many deliveries
    assert decisions["by_risk"] == hand["by_risk"]
    assert decisions["by_decision"] == {DECISION[k]: v for k, v in hand["by_risk"].items()}
    assert decisions["pending_now"] == len(hand["pending"])
    assert decisions["oldest_pending"]["pull_request"] == min(hand["pending"])
    approvals = view["approvals"]
    needed = hand["by_risk"]["R2"] + hand["by_risk"]["R3"]
    assert (approvals["total_needed"], approvals["granted"], approvals["rejected"],
            approvals["pending"]) == (needed, hand["granted"], hand["rejected"],
                                      len(hand["pending"]))
    summary = view["summary"]
    assert summary["total_executions"] == 500
    assert summary["error_rate"] == 2.0  # only the failed executions, not the waiting PRs
    assert set(view["agent_health"]) == set(agents)  # no author, no "unassigned"
    assert not authors & set(view["agent_health"]) and "unassigned" not in view["agent_health"]
    assert view["alerts"] == []  # healthy data raises nothing

    # The drill-down lists each pending pull request with its link and the filter used.
    drill = loop.api("GET", "/api/metrics?period=24h&drill=decisions&filter=state:pending")
    rows = drill["drill"]["items"]
    assert sorted(r["pull_request"] for r in rows) == sorted(hand["pending"])
    assert all(r["url"].endswith(f"/pull/{r['pull_request']}") for r in rows)
    assert drill["drill"]["query"].startswith("kind:decisions state:pending timestamp:")

    # A burst of real failures on one skill fires the burn-rate alert naming that skill.
    burst = [{"id": f"burst-{n}", "timestamp": (now - timedelta(seconds=5 * n)).isoformat(),
              "skill": "deploy-prod", "agent": "executor-1", "risk_level": "R2",
              "decision": "auto_execute", "success": False, "error_type": "deploy_failed",
              "latency_ms": 30_000} for n in range(40)]
    loop.api("POST", "/api/executions", json.dumps(burst).encode())
    store = open_store(tmp_path / "metrics.db")
    try:
        fired = evaluate(store, parse_config("").section("metrics"), now)
    finally:
        store.close()
    burning = [a for a in fired if a.kind == "error_budget" and a.skill == "deploy-prod"]
    assert burning and burning[0].severity == "critical"
    assert "skill deploy-prod failed" in burning[0].reason
    assert {a.skill for a in fired if a.kind == "error_budget"} <= {"deploy-prod", None}
    overall = [a for a in fired if a.key == "error-budget:all"]
    assert all("skill deploy-prod" in a.reason for a in overall)  # the culprit is named
    after = loop.api("GET", "/api/metrics?period=1h")
    assert after["summary"]["p99_latency_ms"] == 30_000.0  # exact at a saturated bin
