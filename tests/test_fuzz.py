"""Fuzzing the parsers that read what people and GitHub send: only the project's own
errors may come out, never a crash.

Each target is a hypothesis strategy plus a check. The normal test run uses a small
budget (a few seconds in all); ``python bench/fuzz.py`` runs the same targets with at
least 100,000 examples each and counts failures instead of stopping at the first.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.certification.credential import (
    Issuer,
    Verification,
    build_credential,
    dump_credential,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_credential,
    verify_credential,
)
from bot.certification.program import parse_program
from bot.config import parse_config
from bot.errors import CvfError
from bot.events import load_handlers
from bot.github.port import GitHubError
from bot.github.signature import sign
from bot.metrics.store import open_store
from bot.rfc.document import parse_rfc, update_front_matter
from bot.rfc.slash import Command, parse_commands
from tests.conftest import load_payload
from tests.fake_github import FakeGitHub

ROOT = Path(__file__).resolve().parent.parent
SECRET = "fuzz-webhook-secret"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# -- strategies -------------------------------------------------------------------------
# Characters that matter to YAML, markdown and the command grammar, mixed with anything a
# decoded UTF-8 file or JSON string can hold (lone surrogates come only from JSON escapes).
SPICY = "-:[]{}#&*!|>'\"%@`,?\\/ \t\n\r<>=~^$+."
spicy_text = st.text(st.one_of(st.sampled_from(SPICY),
                               st.characters(blacklist_categories=("Cs",))), max_size=80)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=True, allow_infinity=True), spicy_text)
json_values = st.recursive(json_scalars,
                           lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                   st.dictionaries(spicy_text, inner, max_size=4)),
                           max_leaves=12)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replace(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = _replace(doc[head], rest, value)
    return copy


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """``base`` with one to three values (anywhere in it) replaced by random JSON values,
    or keys dropped: the shape of real input, with nonsense where it hurts."""
    doc = base
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if path and draw(st.integers(0, 4)) == 0:
            parent = path[:-1]
            holder = doc
            for part in parent:
                holder = holder[part]
            if isinstance(holder, dict):
                trimmed = {k: v for k, v in holder.items() if k != path[-1]}
                doc = _replace(doc, parent, trimmed)
                continue
        doc = _replace(doc, path, draw(json_values))
    return doc


FRONT_KEYS = ["rfc", "title", "type", "status", "authors", "created", "comment_period_ends",
              "discussion", "decision", "supersedes", "superseded_by", "requires", "x"]


@st.composite
def front_matter_texts(draw: st.DrawFn) -> str:
    keys = draw(st.lists(st.sampled_from(FRONT_KEYS), max_size=10))
    lines = []
    for key in keys:
        value = draw(st.one_of(spicy_text, st.integers(-5, 10**12).map(str),
                               st.just("2026-03-01"), st.just("[a, b]"), st.just("{x: 1}"),
                               st.just("&a [*a]"), st.just("!!python/object:os.system x")))
        lines.append(f"{key}: {value}")
    opener = draw(st.sampled_from(["---\n", "---\r\n", "--- \n", "\ufeff---\n", ""]))
    closer = draw(st.sampled_from(["---\n", "...\n", "", "---"]))
    body = draw(st.one_of(st.just("\n## Summary\n\nWords.\n"), spicy_text))
    return opener + "\n".join(lines) + "\n" + closer + body


SECTIONS = {"rfc": ["directory", "types", "comment_period", "committee", "vote_rules",
                    "reactions", "labels", "permissions", "reminder_before"],
            "routing": ["levels", "roles", "registry_files", "agents"],
            "metrics": ["store", "alerts", "api_token_env"],
            "certification": ["levels", "reviewers"],
            "github": ["bot_login", "retry", "api_url"], "server": ["max_body_bytes"],
            "nonsense": ["x"]}


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 3)) == 0:
        return draw(spicy_text)
    data: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=4)):
        keys = draw(st.lists(st.sampled_from(SECTIONS[section]), max_size=3))
        data[section] = {k: draw(json_values) for k in keys}
    text = yaml.safe_dump(data, allow_unicode=True)
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(spicy_text) + text[cut:]
    return text


COMMAND_BITS = ["/rfc ", "/vote ", "/rfc extend ", "/rfc concern ", "/RFC ACCEPT", "```",
                "~~~", "> ", "    ", "<!--", "-->", "\n", "@", "approve", "7d", "0d", "9" * 30]


@st.composite
def comment_bodies(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.sampled_from(COMMAND_BITS), spicy_text), max_size=25))
    return "".join(parts)


EVENTS = ["issue_comment", "pull_request", "pull_request_review", "pull_request_review_comment",
          "issues", "push", "workflow_run", "check_run", "installation", "ping", "nonsense"]
REAL = [("issue_comment", "created"), ("pull_request", "opened"),
        ("pull_request", "synchronize"), ("pull_request_review", "submitted"),
        ("issues", "opened"), ("push", "payload"), ("workflow_run", "completed")]


@st.composite
def webhook_bodies(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """(event, body, whether GitHub's payload shape was broken below the top level)."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.sampled_from(EVENTS)), draw(st.binary(max_size=200)), False
    if kind == 1:
        return draw(st.sampled_from(EVENTS)), json.dumps(draw(json_values)).encode(), False
    event, name = draw(st.sampled_from(REAL))
    base = _payload(event, name)
    doc = draw(mutated(base)) if kind == 2 else base
    if kind == 3:  # a real payload with a comment body people wrote
        doc = json.loads(json.dumps(base))
        if "comment" in doc:
            doc["comment"]["body"] = draw(comment_bodies())
        if isinstance(doc.get("pull_request"), dict):
            doc["pull_request"]["title"] = draw(spicy_text)
    return event, json.dumps(doc, default=str).encode(), kind == 2


@cache
def _payload(event: str, name: str) -> dict[str, Any]:
    payload = load_payload(event, name)
    payload["repository"]["full_name"] = "octo-org/governance"
    payload.pop("installation", None)
    return payload


def _metric(i: int) -> dict[str, Any]:
    return {"id": f"r{i}", "timestamp": "2026-03-10T11:00:00Z", "skill": "deploy",
            "agent": "a1", "risk_level": "R1", "decision": "auto_execute", "success": True,
            "error_type": None, "latency_ms": 100, "approval": None,
            "audit": {"report_posted": True, "approval_recorded": False}, "source": "test"}


@st.composite
def jsonl_batches(draw: st.DrawFn) -> list[str]:
    lines = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            lines.append(draw(spicy_text))
        elif kind == 1:
            lines.append(json.dumps(draw(json_values)))
        else:
            lines.append(json.dumps(draw(mutated(_metric(i))) if kind == 2 else _metric(i)))
    return lines


@cache
def _credential() -> tuple[dict[str, Any], Any]:
    private, public = generate_keypair()
    program = parse_program((ROOT / "certification/program.yml").read_text("utf-8"))
    unsigned = build_credential(program.level("foundation"), login="alice", score=82,
                                evidence="https://github.com/octo-org/governance/pull/7",
                                issuer=Issuer("https://github.com/octo-org", "Octo"),
                                issued=NOW, valid_for=timedelta(days=730))
    signed = sign_credential(unsigned, load_private_key(private), NOW)
    return json.loads(dump_credential(signed)), load_public_key(public)


@st.composite
def credential_texts(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(spicy_text)
    if kind == 1:
        return json.dumps(draw(json_values))
    doc, _ = _credential()
    return json.dumps(draw(mutated(doc)), default=str)


# -- checks: each returns normally, raises an allowed error, or fails -------------------
def check_front_matter(text: str) -> None:
    try:
        doc = parse_rfc(text, path="rfcs/0001-x.md")
    except CvfError:
        return
    for prop in ("number", "title", "type", "status", "authors", "created",
                 "comment_period_ends", "discussion", "decision", "supersedes",
                 "superseded_by", "requires", "headings", "field_lines"):
        with contextlib.suppress(CvfError):
            getattr(doc, prop)
    with contextlib.suppress(CvfError):
        update_front_matter(text, {"status": "open_for_comment"})


def check_config(text: str) -> None:
    try:
        config = parse_config(text)
    except CvfError:
        return
    for section in ("rfc", "routing", "metrics", "certification", "github", "server"):
        config.section(section)


def check_slash(text: str) -> None:
    commands = parse_commands(text)
    assert all(isinstance(c, Command) for c in commands)
    assert len(commands) <= 21  # MAX_COMMANDS plus the one "too many" answer
    for c in commands:
        # Error texts go into the bot's answer as they are: no mention, no markup.
        if c.error:
            assert "@" not in c.error and "<" not in c.error, c.error


@cache
def _app() -> Any:
    """The real app and handlers, with the in-memory GitHub behind them."""

    def factory(repo: str, installation_id: int | None = None, *,
                dry_run: bool = False) -> FakeGitHub:
        gh = FakeGitHub(repo if "/" in repo else "octo-org/governance")
        gh.add_issue(1, title="An issue", author="Codertocat")
        gh.add_pull(2, title="A change", author="Codertocat", files={"README.md": "hi\n"})
        return gh

    app = create_app(parse_config(""), github_factory=factory, router=load_handlers(),
                     env={"CVF_WEBHOOK_SECRET": SECRET}, recent_deliveries=0,
                     clock=lambda: NOW)
    return app.test_client()


# Signed payloads whose nested fields had the wrong JSON type, answered "a handler failed"
# (bench/fuzz.py prints the count). Only GitHub can sign a delivery, and GitHub keeps its
# own schema, so this is robustness, not a way in; the app itself must still answer.
HANDLER_ERRORS: Counter[str] = Counter()


def check_webhook(item: tuple[str, bytes, bool]) -> None:
    event, body, reshaped = item
    answer = _app().post("/webhook", data=body, headers={
        "X-GitHub-Event": event, "X-GitHub-Delivery": "fuzz",
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)})
    # Always a JSON answer from the app (never Flask's HTML crash page).
    reply = json.loads(answer.get_data())
    if reshaped and answer.status_code == 500 and "handler failed" in reply.get("error", ""):
        HANDLER_ERRORS[event] += 1
        return
    # 400 bad body, 422 bad config, 502 GitHub said no (the fake's 404s): all answers a
    # sender can act on. A 500 here means a handler crashed on a well-formed payload.
    assert answer.status_code in (200, 202, 400, 422, 502), (
        answer.status_code, answer.get_data(as_text=True)[:500])


_STORES: dict[str, Any] = {}


def check_jsonl(lines: list[str]) -> None:
    store = _STORES.get("store")
    if store is None:
        store = _STORES["store"] = open_store(":memory:")
    before = store.last_seq()
    try:
        store.ingest_lines(lines, where="fuzz.jsonl")
    except CvfError:
        assert store.last_seq() == before  # a refused batch leaves nothing behind
        return
    out = io.StringIO()
    store.export_jsonl(out)


def check_credential(text: str) -> None:
    _, public = _credential()
    try:
        result = verify_credential(text, public_key=public, now=NOW)
    except CvfError:
        return
    assert isinstance(result, Verification)
    assert all(isinstance(p, str) for p in result.problems)
    result.login, result.level, result.score  # noqa: B018  (shown to people: must not raise)


@dataclass(frozen=True)
class Target:
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]
    tests: int  # examples in the normal test run


TARGETS: dict[str, Target] = {
    "front_matter": Target(front_matter_texts(), check_front_matter, 150),
    "config": Target(config_texts(), check_config, 80),
    "slash": Target(comment_bodies(), check_slash, 300),
    "webhook": Target(webhook_bodies(), check_webhook, 80),
    "jsonl": Target(jsonl_batches(), check_jsonl, 100),
    "credential": Target(credential_texts(), check_credential, 100),
}


def _known_failure(exc: BaseException) -> bool:
    return isinstance(exc, GitHubError)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_typed_errors_escape(name: str) -> None:
    target = TARGETS[name]

    @settings(max_examples=target.tests, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def run(example: Any) -> None:
        target.check(example)

    run()


def test_the_mutator_keeps_the_shape_of_real_input() -> None:
    base = _payload("issue_comment", "created")

    @settings(max_examples=30, deadline=None, database=None, derandomize=True)
    @given(mutated(base))
    def run(doc: Any) -> None:
        json.dumps(doc, default=str)

    run()
