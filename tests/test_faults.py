"""GitHub failing, then recovering: the end state is the fault-free one, posted once.

One RFC's whole life (opened, opened for comment, votes, a refused command, a concern
raised and resolved, review, accept) is delivered to the webhook app under a real WSGI
server, with real PyGithub talking to the simulator. Before each step the simulator is
told to fail in one way; a delivery answered with an error is redelivered (as GitHub's
"Redeliver" does) after the fault has passed. Labels, the ledger in the status comment,
the check run, the front matter and the bot's comments must end exactly as in a run
without faults. A second test kills the bot (``kill -9``) in the middle of a delivery
and redelivers it to a fresh process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.config import parse_config
from bot.events import Event, Router
from bot.github.adapter import PyGithubAdapter
from bot.handlers import rfc as handler
from bot.rfc.document import parse_rfc
from bot.rfc.record import Ledger
from bot.rfc.status import STATUS_MARKER
from tests.conftest import LocalServer, load_payload, post_webhook
from tests.fake_github import FakeGitHub
from tests.ghsim import GitHubSimulator
from tests.ghsim import server as ghsim_server
from tests.ghsim.state import World
from tests.rfc_samples import rfc_text

ROOT = Path(__file__).resolve().parent.parent
SECRET = "faults-secret"
TOKEN = "ghs_faults_token"
REPO = "octo-org/governance"
PATH = "rfcs/0005-shared-vocabulary.md"
BOT = "cvf-governance[bot]"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REPO_CONFIG = """\
rfc:
  committee:
    users: [alice, bob, carol]
  vote_rules:
    default: {quorum: 2, threshold: 0.6667}
"""
# (who, what) after the pull request is opened; None = the pull_request event itself.
SCRIPT: list[tuple[str, str] | None] = [
    None, ("alice", "/rfc open"), ("bob", "/vote approve"), ("mallory", "/rfc accept"),
    ("carol", "/vote approve looks right"), ("alice", "/rfc concern naming"),
    ("alice", "/rfc resolve naming"), ("alice", "/rfc review"), ("alice", "/rfc accept"),
]



class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def rfc_router() -> Router:
    router = Router()
    router.register("pull_request", "opened", "synchronize")(handler.on_pull_request)
    router.register("issue_comment", "created")(handler.on_issue_comment)
    return router


@dataclass
class Outcome:
    ledger: list[tuple[str, ...]]
    labels: list[str]
    check: tuple[str | None, str | None]
    front_status: Any
    bot_markers: list[str]
    reactions: list[tuple[str, str]]
    redeliveries: int


class Run:
    """The simulator and the bot; ``play`` runs the script with a fault before each step."""

    def __init__(self, *, timeout: int = 20) -> None:
        self._nagle = getattr(ghsim_server._Handler, "disable_nagle_algorithm", False)
        ghsim_server._Handler.disable_nagle_algorithm = True
        self.clock = Clock()
        self.sim = GitHubSimulator(world=World(clock=self.clock)).start()
        self.repo = self.sim.repo(REPO)
        self.repo.put_file(".github/cvf.yml", REPO_CONFIG)
        sim_url = self.sim.base_url

        def factory(repo: str, installation_id: int | None = None, *,
                    dry_run: bool = False) -> PyGithubAdapter:
            return PyGithubAdapter(repo, token=TOKEN, api_url=sim_url, bot_login=BOT,
                                   dry_run=dry_run, attempts=3, max_wait=0.2,
                                   seconds_between_writes=None, timeout=timeout)

        app = create_app(parse_config(""), github_factory=factory, clock=self.clock,
                         router=rfc_router(), env={"CVF_WEBHOOK_SECRET": SECRET},
                         recent_deliveries=0)
        self.server = LocalServer(app)
        self.url = self.server.url
        self.number = 0
        self.comment_ids: list[int] = []

    def close(self) -> None:
        self.server.close()
        self.sim.stop()
        ghsim_server._Handler.disable_nagle_algorithm = self._nagle

    def deliver(self, event: str, payload: dict[str, Any], delivery: str) -> int:
        return post_webhook(self.url, event, payload, secret=SECRET, delivery=delivery)[0]

    def play(self, fault: Callable[[GitHubSimulator, int], None] | None = None) -> Outcome:
        redeliveries = 0
        for step, action in enumerate(SCRIPT):
            self.clock.now = T0 + timedelta(minutes=step)
            if action is None:
                self.number = self.repo.add_pull(title="RFC: shared vocabulary",
                                                 author="writer", files={PATH: rfc_text()},
                                                 head_ref="rfc-5").number
                event, payload = "pull_request", load_payload("pull_request", "opened")
                payload["number"] = payload["pull_request"]["number"] = self.number
                payload["sender"]["login"] = "writer"
            else:
                who, text = action
                comment = self.repo.add_comment(self.number, who, text)
                self.comment_ids.append(comment.id)
                event, payload = "issue_comment", load_payload("issue_comment", "created")
                payload["issue"]["number"] = self.number
                payload["issue"]["pull_request"] = {"url": ""}
                payload["comment"].update(id=comment.id, body=text)
                payload["comment"]["user"]["login"] = payload["sender"]["login"] = who
            payload["repository"].update(full_name=REPO, name="governance",
                                         default_branch="main")
            payload["repository"]["owner"]["login"] = "octo-org"
            payload.pop("installation", None)
            if fault is not None:
                fault(self.sim, step)
            status = self.deliver(event, payload, f"step-{step}")
            self.sim.clear_faults()  # GitHub recovers
            tries = 0
            while status != 200 and tries < 4:
                tries += 1
                redeliveries += 1
                status = self.deliver(event, payload, f"step-{step}")
            assert status == 200, f"step {step} still failing after redelivery"
        return self.outcome(redeliveries)

    def _by_index(self, marker: str) -> str:
        """A marker naming a person's comment by its place in the play, not its id (nor a
        hash of a key holding it): ids count every object the simulator made, so a
        retried write shifts them."""
        for index, comment_id in enumerate(self.comment_ids):
            if f":{comment_id}:" in marker:  # the rest is a hash of a key holding the id
                return marker.split(f":{comment_id}:")[0] + f":#{index} -->"
        return marker

    def outcome(self, redeliveries: int) -> Outcome:
        comments = self.repo.comments_on(self.number)
        mine = [c for c in comments if c.user == BOT]
        status = [c.body for c in mine if c.body.startswith(STATUS_MARKER)]
        assert len(status) == 1, f"{len(status)} status comments"
        ledger = [(e.command, e.by, e.argument, e.outcome, e.from_state, e.to_state)
                  for e in Ledger.decode(status[0]).entries]
        pull = self.repo.pull(self.number)
        runs = self.repo.check_runs_for(self.repo.pull(self.number).head_sha, "cvf/rfc")
        check = (runs[-1].status, runs[-1].conclusion) if runs else (None, None)
        text = self.repo.file_text(PATH, pull.head_ref) or ""
        reactions = sorted((str(i), r.content) for i, cid in enumerate(self.comment_ids)
                           for r in self.repo.reactions_on(comment_id=cid) if r.user == BOT)
        return Outcome(ledger=ledger, labels=sorted(self.repo.labels_on(self.number)),
                       check=check, front_status=parse_rfc(text).meta.get("status"),
                       bot_markers=sorted(self._by_index(c.body.splitlines()[0])
                                          for c in mine),
                       reactions=reactions, redeliveries=redeliveries)


@pytest.fixture(scope="module")
def baseline() -> Outcome:
    run = Run()
    try:
        outcome = run.play()
    finally:
        run.close()
    assert outcome.ledger[-1][5] == "accepted" and outcome.front_status == "accepted"
    assert outcome.redeliveries == 0
    return outcome


def _every_step(inject: Callable[[GitHubSimulator], None]) -> Callable[[GitHubSimulator, int],
                                                                     None]:
    return lambda sim, step: inject(sim)


FAULTS: dict[str, Callable[[GitHubSimulator, int], None]] = {
    "5xx burst": _every_step(lambda sim: sim.fail(502, times=4)),
    "500 on writes": _every_step(lambda sim: sim.fail(500, times=3, method="POST")),
    "secondary rate limit": _every_step(
        lambda sim: sim.secondary_rate_limit(retry_after=0, times=2)),
    "409 conflict on contents": _every_step(
        lambda sim: sim.fail(409, times=2, method="PUT", path=r"/contents/")),
    "dropped before write": _every_step(lambda sim: sim.drop(times=2)),
    "dropped after comment write": _every_step(
        lambda sim: sim.drop(after_write=True, times=1, method="POST",
                             path=r"/issues/\d+/comments$")),
    "dropped after reaction write": _every_step(
        lambda sim: sim.drop(after_write=True, times=1, method="POST", path=r"/reactions$")),
    "dropped after status edit": _every_step(
        lambda sim: sim.drop(after_write=True, times=1, method="PATCH")),
}


pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_faults_end_as_a_fault_free_run(name: str, baseline: Outcome) -> None:
    run = Run()
    try:
        outcome = run.play(FAULTS[name])
    finally:
        run.close()
    assert outcome.ledger == baseline.ledger
    assert outcome.labels == baseline.labels
    assert outcome.check == baseline.check
    assert outcome.front_status == baseline.front_status
    assert outcome.reactions == baseline.reactions
    duplicates = [m for m, n in Counter(outcome.bot_markers).items() if n > 1]
    assert duplicates == [], "the bot posted the same comment twice"
    assert outcome.bot_markers == baseline.bot_markers


def test_timeouts_end_as_a_fault_free_run(baseline: Outcome) -> None:
    """A GitHub answer slower than the client's timeout, at two steps (slow: ~3 s)."""
    def slow(sim: GitHubSimulator, step: int) -> None:
        if step in (1, 7):
            sim.slow(1.6, times=1, method="POST")

    run = Run(timeout=1)
    try:
        outcome = run.play(slow)
    finally:
        run.close()
    assert (outcome.ledger, outcome.labels, outcome.front_status, outcome.reactions) == (
        baseline.ledger, baseline.labels, baseline.front_status, baseline.reactions)
    assert outcome.bot_markers == baseline.bot_markers


# -- races ---------------------------------------------------------------------------------
class RacingGitHub(FakeGitHub):
    """The first comment the bot creates is preceded by a whole second delivery of the
    same event (another worker handling GitHub's redelivery at the same moment)."""

    def __init__(self, config: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.config = config
        self.race: Callable[[], None] | None = None

    def create_comment(self, number: int, body: str) -> Any:
        race, self.race = self.race, None
        if race is not None:
            race()
        return super().create_comment(number, body)


def test_two_workers_answering_the_same_refused_command_post_one_reply() -> None:
    config = parse_config(REPO_CONFIG)
    gh = RacingGitHub(config, bot_login=BOT, now=T0 - timedelta(days=1))
    number = gh.add_pull(title="RFC", author="writer", files={PATH: rfc_text()},
                         head_ref="rfc-5", created_at=T0).number

    def event(name: str, payload: dict[str, Any]) -> Event:
        payload.setdefault("repository", {"full_name": gh.repo})
        return Event(name=name, payload=payload, config=config, now=T0 + timedelta(hours=1))

    handler.on_pull_request(event("pull_request", {
        "action": "opened", "number": number, "pull_request": {"number": number},
        "sender": {"login": "writer"}}), gh)
    comment = gh.add_comment(number, "mallory", "/rfc accept", created_at=T0 + timedelta(1))
    delivery = {"action": "created", "issue": {"number": number, "pull_request": {}},
                "comment": {"id": comment.id}, "sender": {"login": "mallory"}}
    gh.race = lambda: handler.on_issue_comment(event("issue_comment", dict(delivery)), gh)
    handler.on_issue_comment(event("issue_comment", dict(delivery)), gh)
    replies = [c.body for c in gh.bot_comments(number)
               if f"cvf:rfc-reply:{comment.id}:" in c.body]
    assert len(replies) == 1, replies


# -- the bot killed mid-delivery ----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gunicorn:
    def __init__(self, sim: GitHubSimulator, workdir: Path) -> None:
        self.port = _free_port()
        env = {**os.environ, "GITHUB_API_URL": sim.base_url, "GITHUB_TOKEN": TOKEN,
               "CVF_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
        env.pop("CVF_APP_ID", None)
        self.log = open(workdir / f"gunicorn-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4",
             "--bind", f"127.0.0.1:{self.port}", "bot.app:create_app()"],
            cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "gunicorn exited at start"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("gunicorn did not start")

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # master and worker, no goodbye
        self.proc.wait(timeout=10)
        self.log.close()


def _post(port: int, event: str, payload: dict[str, Any], delivery: str) -> int:
    try:
        return post_webhook(f"http://127.0.0.1:{port}", event, payload, secret=SECRET,
                            delivery=delivery)[0]
    except OSError:
        return 0  # the connection died with the bot


@pytest.mark.parametrize("where", [("POST", r"/reactions$"), ("PATCH", r"/issues/comments/"),
                                   ("POST", r"/labels$")])
def test_bot_killed_mid_delivery_finishes_once_on_redelivery(
        where: tuple[str, str], ghsim: GitHubSimulator, tmp_path: Path) -> None:
    repo = ghsim.repo(REPO)
    repo.put_file(".github/cvf.yml", REPO_CONFIG)
    number = repo.add_pull(title="RFC", author="writer", files={PATH: rfc_text()},
                           head_ref="rfc-5").number

    def comment_event(who: str, text: str) -> dict[str, Any]:
        comment = repo.add_comment(number, who, text)
        payload = load_payload("issue_comment", "created")
        payload["issue"]["number"] = number
        payload["issue"]["pull_request"] = {"url": ""}
        payload["comment"].update(id=comment.id, body=text)
        payload["comment"]["user"]["login"] = payload["sender"]["login"] = who
        payload["repository"].update(full_name=REPO, default_branch="main")
        payload.pop("installation", None)
        return payload

    bot = Gunicorn(ghsim, tmp_path)
    try:
        opening = comment_event("alice", "/rfc open")
        assert _post(bot.port, "issue_comment", opening, "d-open") == 200
        review = comment_event("alice", "/rfc review")
        # The bot stalls on one write of this delivery; it is killed while it waits.
        stall = ghsim.slow(2.0, times=1, method=where[0], path=where[1])
        answer: list[int] = []
        sender = threading.Thread(target=lambda: answer.append(
            _post(bot.port, "issue_comment", review, "d-review")))
        sender.start()
        deadline = time.monotonic() + 30
        while stall.hits == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stall.hits == 1, "the bot never reached the stalled write"
        bot.kill9()
        sender.join(timeout=30)
        assert answer == [0]  # GitHub saw the delivery fail
        time.sleep(2.2)  # the stalled write lands (or not) after the bot died
    finally:
        if bot.proc.poll() is None:
            bot.kill9()
    bot = Gunicorn(ghsim, tmp_path)
    try:
        assert _post(bot.port, "issue_comment", review, "d-review") == 200
        assert _post(bot.port, "issue_comment", review, "d-review") == 200  # and again
    finally:
        bot.kill9()
    mine = [c for c in repo.comments_on(number) if c.user == BOT]
    status = [c.body for c in mine if c.body.startswith(STATUS_MARKER)]
    assert len(status) == 1
    entries = [(e.command, e.outcome, e.to_state) for e in Ledger.decode(status[0]).entries]
    assert entries == [("open", "applied", "open_for_comment"),
                       ("review", "applied", "review")]
    assert [r.content for r in repo.reactions_on(comment_id=review["comment"]["id"])
            if r.user == BOT] == ["rocket"]
    assert [label for label in repo.labels_on(number) if label.startswith("rfc:")] == [
        "rfc: review"]
    firsts = [c.body.splitlines()[0] for c in mine]
    assert len(firsts) == len(set(firsts)), firsts


def _ledger_after(order: str) -> list[tuple[str, ...]]:
    """alice accepts while carol's approving vote lands in the same second, just after."""
    config = parse_config(REPO_CONFIG)
    gh = FakeGitHub(bot_login=BOT, now=T0 - timedelta(days=1))
    number = gh.add_pull(title="RFC", author="writer", files={PATH: rfc_text()},
                         head_ref="rfc-5", created_at=T0).number

    def deliver(comment_id: int, at: datetime) -> None:
        handler.on_issue_comment(Event(name="issue_comment", config=config, now=at, payload={
            "action": "created", "repository": {"full_name": gh.repo},
            "issue": {"number": number, "pull_request": {}}, "comment": {"id": comment_id},
            "sender": {"login": "x"}}), gh)

    for minute, (who, text) in enumerate([("alice", "/rfc open"), ("bob", "/vote approve"),
                                          ("alice", "/rfc review")], start=1):
        at = T0 + timedelta(minutes=minute)
        deliver(gh.add_comment(number, who, text, created_at=at).id, at)
    same_second = T0 + timedelta(minutes=10)
    accept = gh.add_comment(number, "alice", "/rfc accept", created_at=same_second)
    if order == "one by one":
        deliver(accept.id, same_second)
    vote = gh.add_comment(number, "carol", "/vote approve", created_at=same_second)
    deliver(accept.id, same_second)
    deliver(vote.id, same_second)
    status = [c.body for c in gh.bot_comments(number) if c.body.startswith(STATUS_MARKER)]
    return [(e.command, e.by, e.outcome, e.to_state) for e in Ledger.decode(status[0]).entries]


def test_a_vote_in_the_same_second_after_accept_counts_the_same_in_any_arrival_order() -> None:
    assert _ledger_after("one by one") == _ledger_after("both already there")
