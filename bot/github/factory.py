"""Building adapters: credentials, API URL and retry policy from the host's own config.

The host (webhook app or ``cvf handle``) reads its *own* configuration and environment
once; a repository's ``.github/cvf.yml`` never chooses the API URL or the credential
variables, or a pull request could send the bot's token to a server of its choosing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

from bot.config import Config
from bot.durations import parse_duration
from bot.github.adapter import SECONDS_BETWEEN_WRITES, PyGithubAdapter
from bot.github.auth import AppCredentials, Clock, Credentials, api_url, credentials_from_env
from bot.github.conditional import EtagCaches
from bot.github.port import CallStats, GitHubError, GitHubPort
from bot.github.retry import Sleeper


class GitHubFactory(Protocol):
    """What hosts call to get a port for one repository (tests pass their own)."""

    def __call__(self, repo: str, installation_id: int | None = None, *,
                 dry_run: bool = False) -> GitHubPort: ...


class AdapterFactory:
    """Makes one ``PyGithubAdapter`` per delivery; shares credentials (and token cache) and
    the remembered ETags of each installation (so a repeated read costs no point)."""

    def __init__(self, credentials: Credentials, *, api_url: str, bot_login: str,
                 attempts: int = 4, max_wait: float = 60.0, sleeper: Sleeper | None = None,
                 seconds_between_writes: float | None = SECONDS_BETWEEN_WRITES) -> None:
        self.credentials = credentials
        self.api_url = api_url
        self.bot_login = bot_login
        self.attempts = attempts
        self.max_wait = max_wait
        self.sleeper = sleeper
        self.seconds_between_writes = seconds_between_writes
        self.etags = EtagCaches()

    def __call__(self, repo: str, installation_id: int | None = None, *,
                 dry_run: bool = False) -> PyGithubAdapter:
        stats = CallStats()
        credentials = self.credentials
        token: Any
        if credentials.mode == "app":
            # Resolved on the first request, so a delivery that needs no API call costs none.
            def token() -> str:
                return credentials.token_for(installation_id, repo, stats)
        else:
            token = credentials.token_for(installation_id, repo, stats)
        return PyGithubAdapter(repo, token=token, api_url=self.api_url, bot_login=self.bot_login,
                               dry_run=dry_run, attempts=self.attempts, max_wait=self.max_wait,
                               sleeper=self.sleeper, stats=stats,
                               seconds_between_writes=self.seconds_between_writes,
                               etags=self.etags.for_installation(
                                   "token" if installation_id is None else installation_id))

    def probe(self, timeout: float = 5.0) -> None:
        """One cheap authenticated call (``GET /rate_limit``, or the App's installations):
        raises ``GitHubError`` saying why GitHub cannot be used (for ``/healthz``)."""
        import requests
        from github import GithubException

        try:
            if isinstance(self.credentials, AppCredentials):
                self.credentials.installations()
                return
            token = self.credentials.token_for(None, "", CallStats())
            answer = requests.get(f"{self.api_url.rstrip('/')}/rate_limit", timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}",
                                           "Accept": "application/vnd.github+json"})
        except GithubException as exc:
            raise GitHubError(f"GitHub refused the App's credentials at {self.api_url} "
                              f"({exc.status}); check the app id and private key",
                              status=exc.status) from None
        except requests.RequestException as exc:
            raise GitHubError(f"cannot reach {self.api_url} ({type(exc).__name__}); check "
                              f"the network and GITHUB_API_URL / github.api_url") from None
        if answer.status_code == 401:
            raise GitHubError(f"GitHub rejected the token at {self.api_url} (401); set a "
                              f"valid token", status=401)
        if answer.status_code >= 400:
            raise GitHubError(f"GitHub answered {answer.status_code} at {self.api_url}",
                              status=answer.status_code)

    def repositories(self, fallback: tuple[str, ...] = ()) -> list[tuple[str, int | None]]:
        """The repositories the ticker visits: every installation's in App mode."""
        if isinstance(self.credentials, AppCredentials):
            stats = CallStats()
            found: list[tuple[str, int | None]] = []
            for installation in self.credentials.installations():
                found += [(repo, installation)
                          for repo in self.credentials.repositories(installation, stats)]
            return found
        return [(repo, None) for repo in fallback]


def factory_from_config(config: Config, env: Mapping[str, str] | None = None, *,
                        sleeper: Sleeper | None = None,
                        clock: Clock | None = None) -> AdapterFactory:
    env = os.environ if env is None else env
    section = config.section("github")
    retry = section.get("retry", {})
    seconds = parse_duration(str(retry.get("max_wait", "60s"))).total_seconds()
    return AdapterFactory(credentials_from_env(section, env, clock=clock),
                          api_url=api_url(section, env), bot_login=str(section["bot_login"]),
                          attempts=int(retry.get("attempts", 4)), max_wait=seconds,
                          sleeper=sleeper)
