"""Timed work in the long-running host: one round over every repository, failures isolated."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config import Config, parse_config
from bot.events import Router
from bot.github.delivery import RepoConfigCache
from bot.github.factory import factory_from_config
from bot.github.port import GitHubPort
from bot.github.ticker import Ticker, run_ticks
from tests.fake_github import FakeGitHub
from tests.ghsim import GitHubSimulator
from tests.rfc_samples import rfc_text

NOW = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


def test_every_repository_ticks_and_one_failure_does_not_stop_the_rest() -> None:
    router = Router()
    seen: list[tuple[str, datetime, str]] = []

    @router.tick
    def record(github: GitHubPort, config: Config, now: datetime) -> None:
        if github.repo == "octo/broken":
            raise RuntimeError("tick bug")
        seen.append((github.repo, now, config.section("server")["tick_interval"]))

    fakes = {name: FakeGitHub(name) for name in ("octo/a", "octo/broken", "octo/b")}
    fakes["octo/b"].put_file(".github/cvf.yml", "rfc:\n  directory: docs/rfcs\n")
    failures = run_ticks(router, lambda repo, inst=None, dry_run=False: fakes[repo],
                         [(name, None) for name in fakes], RepoConfigCache(parse_config("")),
                         NOW)
    assert failures == 1
    assert [repo for repo, _, _ in seen] == ["octo/a", "octo/b"]
    assert all(now == NOW for _, now, _ in seen)


def test_ticker_thread_runs_rounds_until_stopped() -> None:
    ran = threading.Event()
    rounds: list[int] = []

    def round_() -> None:
        rounds.append(1)
        ran.set()

    ticker = Ticker(0.01, round_)
    ticker.start()
    assert ran.wait(5)
    ticker.stop()
    ticker.join(timeout=5)
    assert not ticker.is_alive() and rounds


@responses.activate
def test_app_mode_finds_the_repositories_of_every_installation() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    api = "https://api.github.com:443"
    responses.get(f"{api}/app/installations", json=[{"id": 5, "account": {"login": "octo"}}])
    responses.post(f"{api}/app/installations/5/access_tokens", status=201,
                   json={"token": "ghs_x", "expires_at": "2099-01-01T00:00:00Z"})
    responses.get(f"{api}/installation/repositories",
                  json={"total_count": 2, "repositories": [{"full_name": "octo/a"},
                                                           {"full_name": "octo/b"}]})
    factory = factory_from_config(parse_config(""), {"CVF_APP_ID": "9", "CVF_PRIVATE_KEY": pem})
    assert factory.repositories() == [("octo/a", 5), ("octo/b", 5)]


def test_cvf_serve_starts_the_ticker_with_the_injected_clock(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import flask

    from bot.cli import CliState
    from bot.commands import github as commands

    ran: list[tuple[str, datetime]] = []
    served: list[tuple[str, int]] = []
    router = Router()

    @router.tick
    def tick(github: GitHubPort, config: Config, now: datetime) -> None:
        ran.append((github.repo, now))

    fake = FakeGitHub("octo/demo")
    monkeypatch.setenv("CVF_WEBHOOK_SECRET", "s")
    monkeypatch.setattr("bot.app.load_handlers", lambda: router)
    monkeypatch.setattr("bot.app.factory_from_config", lambda config, env: (
        lambda repo, inst=None, dry_run=False: fake))
    monkeypatch.setattr(flask.Flask, "run", lambda self, host, port, threaded: served.append(
        (host, port)))
    state = CliState(root=".", config_path=None)
    state._config = parse_config("server:\n  tick_interval: 1h\n")
    commands.serve_app(state, host="127.0.0.1", port=9, ticker=True, repos=("octo/demo",),
                       clock=lambda: NOW)
    for _ in range(100):
        if ran:
            break
        threading.Event().wait(0.05)
    assert served == [("127.0.0.1", 9)]
    assert ran == [("octo/demo", NOW)]


def test_app_mode_ticker_visits_each_installation_over_http(ghsim: GitHubSimulator) -> None:
    """Real PyGithub against the simulator: the ticker lists the App's installations,
    mints one token per installation, and runs the tick handlers in each installation's
    repositories (and only those)."""
    from bot.events import load_handlers

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    ghsim.add_installation(1, "octo")
    ghsim.add_installation(2, "acme")
    for name in ("octo/one", "acme/two", "loner/three"):
        repo = ghsim.repo(name)
        repo.add_label("rfc: open-for-comment")
        repo.add_pull(1, title="RFC: shared vocabulary", author="writer",
                      files={"rfcs/0005-shared-vocabulary.md": rfc_text()},
                      labels=["rfc: open-for-comment"], head_ref="rfc-5")
    config = parse_config("metrics:\n  store: ':memory:'\n")
    factory = factory_from_config(config, {"CVF_APP_ID": "77", "CVF_PRIVATE_KEY": pem,
                                           "GITHUB_API_URL": ghsim.base_url})
    repos = factory.repositories()
    assert sorted(repos) == [("acme/two", 2), ("octo/one", 1)]

    failures = run_ticks(load_handlers(), factory, repos, RepoConfigCache(config), NOW)
    assert failures == 0
    for name in ("octo/one", "acme/two"):
        authors = {c.user for c in ghsim.repo(name).comments_on(1)}
        assert authors == {"cvf-governance[bot]"}, name
    assert ghsim.repo("loner/three").comments_on(1) == []
    for installation in (1, 2):
        assert ghsim.count("POST", f"/app/installations/{installation}/access_tokens") == 1
