"""GitHub API calls per event, against the hand minimum a correct bot needs.

    python bench/calls.py               # the four events, an idle tick over 100 open RFCs,
                                        # then bench/startup.py (start-up ratios)
    python bench/calls.py --log         # also print every request of each event
    python bench/calls.py --no-startup  # the API calls only (startup builds a 1M store)

The webhook app (every concern's handlers, as deployed) runs under a real WSGI server on
127.0.0.1; real PyGithub speaks HTTP to the local GitHub simulator, which counts the
requests and the rate-limit points (a 304 to a conditional request costs none). For each
event it prints the calls made (writes, points) beside the minimum, with the list of
calls the minimum consists of. Targets (issue 15): calls <= 1.2x the minimum for each
event; an idle tick over 100 open RFCs <= 3 rate-limit points.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import create_app  # noqa: E402
from bot.commands.rfc_governance import run_tick  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.github.auth import TokenCredentials  # noqa: E402
from bot.github.factory import AdapterFactory  # noqa: E402
from tests.conftest import LocalServer, load_payload, post_webhook  # noqa: E402
from tests.ghsim import GitHubSimulator  # noqa: E402
from tests.ghsim import server as ghsim_server  # noqa: E402
from tests.ghsim.state import World  # noqa: E402
from tests.rfc_samples import rfc_text  # noqa: E402
from tests.test_rfc_e2e import Clock, _State  # noqa: E402  (the RFC tests' frozen clock)

REPO = "octo-org/governance"
BOT = "cvf-governance[bot]"
SECRET = "calls-bench-secret"
CONFIG = """\
rfc:
  committee:
    users: [alice, bob]
    teams: [octo-org/rfc-committee]
routing:
  agents:
    - {id: executor-1, capabilities: [deploy, execute]}
    - {id: doc-bot, capabilities: [write]}
  skills:
    - {id: docs, risk_level: R0, required_capabilities: [write], paths: [docs/]}
    - {id: app-code, risk_level: R1, required_capabilities: [execute], paths: [src/]}
"""

# The calls a correct bot cannot do without, per event, counted by hand. Every concern
# runs on every pull request event (an RFC pull request also passes the routing gate).
MINIMUM: dict[str, list[str]] = {
    "RFC pull request opened": [
        "GET .github/cvf.yml (the repository's config)",
        "GET the pull request (head sha, branch, labels, state)",
        "GET its issue comments (sticky comments, commands in the history)",
        "GET its files (which RFC it adds; which paths the routing gate sees)",
        "GET its reviews (the routing gate's approvals)",
        "GET the check runs on the head (one listing for cvf/routing and cvf/rfc)",
        "GET the RFC file at the head",
        "GET the committee team's members",
        "GET the pull request's reactions (votes by reaction)",
        "GET its review comments (unanswered threads)",
        "POST the routing report comment",
        "POST the cvf/routing check run",
        "POST the RFC status comment",
        "POST the label rfc: draft",
        "POST the cvf/rfc check run",
    ],
    "/vote comment": [
        "GET the pull request",
        "GET its files (is it an RFC pull request, which file)",
        "GET the RFC file at the head (type, authors, lint)",
        "GET its issue comments (the vote, the status comment and its ledger)",
        "GET the committee team's members (binding or not)",
        "GET the pull request's reactions (votes by reaction)",
        "GET its review comments (unanswered threads)",
        "POST +1 on the vote",
        "PATCH the status comment",
    ],
    "code pull request opened (routing gate)": [
        "GET the pull request",
        "GET its issue comments (the sticky report, commands in the history)",
        "GET its files",
        "GET its reviews (approvals)",
        "GET the check runs on the head",
        "POST the routing report comment",
        "POST the cvf/routing check run",
    ],
}
TICK_MINIMUM = ["GET the open RFC pull requests (one listing, by label)",
                "per RFC: GET its issue comments (the status comment: period end, vote "
                "fingerprint)",
                "per RFC: GET its reactions (GitHub sends no reaction webhook)",
                "all three answered 304 when nothing changed: 0 rate-limit points"]
TARGET_RATIO = 1.2
TARGET_TICK_POINTS = 3


class Stage:
    def __init__(self) -> None:
        ghsim_server._Handler.disable_nagle_algorithm = True
        self.clock = Clock()
        self.sim = GitHubSimulator(world=World(clock=self.clock), log_limit=None).start()
        self.sim.set_team("octo-org", "rfc-committee", ["carol"])
        self.sim.set_token("bot-token", BOT)
        self.repo = self.sim.repo(REPO)
        self.repo.put_file(".github/cvf.yml", CONFIG)
        self.config = parse_config(CONFIG)
        self.factory = AdapterFactory(TokenCredentials("bot-token"), api_url=self.sim.base_url,
                                      bot_login=BOT, attempts=2, max_wait=1.0,
                                      seconds_between_writes=None)
        app = create_app(parse_config(""), github_factory=self.factory, clock=self.clock,
                         env={"CVF_WEBHOOK_SECRET": SECRET}, recent_deliveries=0)
        self.server = LocalServer(app)
        self.deliveries = 0

    def close(self) -> None:
        self.server.close()
        self.sim.stop()

    def deliver(self, event: str, payload: dict[str, Any]) -> None:
        self.deliveries += 1
        status, body = post_webhook(self.server.url, event, payload, secret=SECRET,
                                    delivery=f"d-{self.deliveries}", timeout=60)
        assert status == 200, body

    def _repository(self, payload: dict[str, Any]) -> None:
        payload["repository"]["full_name"] = REPO
        payload["repository"]["name"] = "governance"
        payload["repository"]["owner"]["login"] = "octo-org"
        payload["repository"]["default_branch"] = "main"
        payload.pop("installation", None)

    def open_pull(self, files: dict[str, str | None], ref: str) -> int:
        self.clock.advance(minutes=1)
        pull = self.repo.add_pull(title="A change", author="writer", files=files,
                                  head_ref=ref)
        payload = load_payload("pull_request", "opened")
        payload["number"] = payload["pull_request"]["number"] = pull.number
        payload["sender"]["login"] = "writer"
        self._repository(payload)
        self.deliver("pull_request", payload)
        return pull.number

    def open_rfc(self, number: int) -> int:
        return self.open_pull({f"rfcs/{number:04d}-proposal.md":
                               rfc_text(number, title=f"Proposal {number}")}, f"rfc-{number}")

    def say(self, number: int, author: str, body: str) -> None:
        self.clock.advance(minutes=1)
        comment = self.repo.add_comment(number, author, body)
        payload = load_payload("issue_comment", "created")
        payload["issue"]["number"] = number
        payload["issue"]["pull_request"] = {"url": f"{self.sim.base_url}/repos/{REPO}/pulls/"
                                                   f"{number}"}
        payload["comment"]["id"] = comment.id
        payload["comment"]["user"]["login"] = payload["sender"]["login"] = author
        self._repository(payload)
        self.deliver("issue_comment", payload)

    def tick(self) -> None:
        self.clock.advance(minutes=1)
        run_tick(_State(self.config), repo=REPO, now=self.clock.now,  # type: ignore[arg-type]
                 dry_run=False, env={}, factory=self.factory, echo=lambda _line: None)


def measured(stage: Stage, name: str, action: Any, log: bool) -> tuple[int, int, int]:
    stage.sim.reset_log()
    action()
    requests = [r for r in stage.sim.requests if r.login == BOT]
    calls = len(requests)
    writes = sum(1 for r in requests if r.is_write)
    points = sum(r.points for r in requests)
    if log:
        print(f"-- {name}")
        for r in requests:
            query = "&".join(f"{k}={v}" for k, v in r.query.items() if k != "per_page")
            print(f"   {r.method:6} {r.status} {r.path}{'?' + query if query else ''}"
                  f"{'' if r.points else '  (304: no point)'}")
    return calls, writes, points


def shorten(path: str) -> str:
    return re.sub(r"^/repos/[^/]+/[^/]+", "", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rfcs", type=int, default=100, help="open RFCs for the idle tick")
    parser.add_argument("--log", action="store_true", help="print every request")
    parser.add_argument("--no-startup", action="store_true",
                        help="skip bench/startup.py (the start-up ratios)")
    parser.add_argument("--store", help="bench/startup.py --store: a 1M-record store to reuse")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the delivery log lines
    stage = Stage()
    rows: list[tuple[str, tuple[int, int, int]]] = []
    try:
        rows.append(("RFC pull request opened",
                     measured(stage, "RFC pull request opened", lambda: stage.open_rfc(5),
                              args.log)))
        number = 1
        stage.say(number, "writer", "Ready for comments.\n/rfc open")
        rows.append(("/vote comment", measured(
            stage, "/vote comment", lambda: stage.say(number, "bob", "/vote approve"),
            args.log)))
        rows.append(("code pull request opened (routing gate)", measured(
            stage, "code pull request opened", lambda: stage.open_pull(
                {"src/app.py": "print('hi')\n"}, "code-1"), args.log)))
        for i in range(args.rfcs - 1):
            rfc = stage.open_rfc(10 + i)
            stage.say(rfc, "writer", "/rfc open")
        stage.tick()  # the first tick after the RFCs opened: learns the ETags
        tick = measured(stage, f"idle tick over {args.rfcs} open RFCs", stage.tick, args.log)
    finally:
        stage.close()
    failed = False
    print(f"{'event':<42} {'calls':>5} {'writes':>6} {'points':>6} {'minimum':>7} {'ratio':>6}")
    for name, (calls, writes, points) in rows:
        minimum = len(MINIMUM[name])
        ratio = calls / minimum
        failed |= ratio > TARGET_RATIO
        print(f"{name:<42} {calls:5} {writes:6} {points:6} {minimum:7} {ratio:5.2f}x"
              f"{'  MISSED' if ratio > TARGET_RATIO else ''}")
    calls, writes, points = tick
    minimum = 1 + 2 * args.rfcs
    failed |= points > TARGET_TICK_POINTS
    print(f"{'idle tick, ' + str(args.rfcs) + ' open RFCs':<42} {calls:5} {writes:6} {points:6}"
          f" {minimum:7} {calls / minimum:5.2f}x   (points <= {TARGET_TICK_POINTS}"
          f"{'' if points <= TARGET_TICK_POINTS else ': MISSED'})")
    print(f"\ntargets: calls <= {TARGET_RATIO}x the minimum; idle tick <= "
          f"{TARGET_TICK_POINTS} rate-limit points. The minimum of each event:")
    for name, calls_needed in MINIMUM.items():
        print(f"  {name}:")
        for call in calls_needed:
            print(f"    - {call}")
    print("  idle tick:")
    for call in TICK_MINIMUM:
        print(f"    - {call}")
    if not args.no_startup:
        print("\nstart-up (bench/startup.py):", flush=True)
        startup = [sys.executable, str(Path(__file__).with_name("startup.py"))]
        failed |= subprocess.run([*startup, *(["--store", args.store] if args.store else [])],
                                 check=False).returncode != 0
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
