"""Who the bot is to GitHub: a token (Action mode) or a GitHub App (webhook mode).

Credentials are read once per process, from environment variables whose *names* come
from the config (``github.token_env``, ``github.app_id_env``, ``github.private_key_env``),
so the secret values never live in a file or in a repository's config. App installation
tokens live an hour; they are cached per installation and replaced a few minutes before
they expire, so a busy bot spends one token request per installation per hour, not one
per event.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from github import Auth, GithubException, GithubIntegration

from bot.errors import ConfigError
from bot.github.port import CallStats, GitHubError

DEFAULT_API_URL = "https://api.github.com"
# Refresh an installation token this long before GitHub says it expires.
REFRESH_MARGIN = timedelta(minutes=5)

Clock = Callable[[], datetime]


def api_url(github_section: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str:
    """``GITHUB_API_URL`` (set by Actions and GHES) wins over config (default github.com)."""
    env = os.environ if env is None else env
    url = env.get("GITHUB_API_URL") or str(github_section.get("api_url") or DEFAULT_API_URL)
    return url.rstrip("/")


class Credentials(Protocol):
    """Hands out the bearer token for a repository's requests."""

    mode: str  # "token" | "app"

    def token_for(self, installation_id: int | None, repo: str, stats: CallStats) -> str: ...


@dataclass
class TokenCredentials:
    """A fixed token: the Action's ``GITHUB_TOKEN`` or a personal access token."""

    token: str
    mode: str = "token"

    def token_for(self, installation_id: int | None, repo: str, stats: CallStats) -> str:
        return self.token

    def __repr__(self) -> str:  # never show the token in a traceback or log
        return "TokenCredentials(token=***)"


class AppCredentials:
    """A GitHub App: JWT from the private key, then cached installation tokens."""

    mode = "app"

    def __init__(self, app_id: str, private_key: str, *, base_url: str,
                 clock: Clock | None = None) -> None:
        self.app_id = app_id
        self._auth = Auth.AppAuth(app_id, private_key)
        self._base_url = base_url
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tokens: dict[int, tuple[str, datetime]] = {}
        self._installations: dict[str, int] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AppCredentials(app_id={self.app_id!r}, private_key=***)"

    def integration(self) -> GithubIntegration:
        return GithubIntegration(auth=self._auth, base_url=self._base_url)

    def installation_for(self, repo: str, stats: CallStats) -> int:
        """The installation of ``repo`` when a payload does not say (ticks, ``cvf handle``)."""
        with self._lock:
            if repo in self._installations:
                return self._installations[repo]
        owner, _, name = repo.partition("/")
        stats.requests += 1
        try:
            with self.integration() as integration:
                installation = integration.get_repo_installation(owner, name)
        except GithubException as exc:
            raise GitHubError(f"the GitHub App {self.app_id} is not installed on {repo} "
                              f"({exc.status}); install it on the repository",
                              status=exc.status) from None
        with self._lock:
            self._installations[repo] = installation.id
        return installation.id

    def token_for(self, installation_id: int | None, repo: str, stats: CallStats) -> str:
        if installation_id is None:
            installation_id = self.installation_for(repo, stats)
        now = self._clock()
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached and cached[1] - REFRESH_MARGIN > now:
                return cached[0]
        stats.requests += 1
        stats.writes += 1
        try:
            with self.integration() as integration:
                grant = integration.get_access_token(installation_id)
        except GithubException as exc:
            raise GitHubError(f"cannot get an installation token for installation "
                              f"{installation_id} of app {self.app_id} ({exc.status}): check "
                              f"the app id and private key, and that the app is installed",
                              status=exc.status) from None
        expires = grant.expires_at or now + timedelta(hours=1)
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        with self._lock:
            self._tokens[installation_id] = (grant.token, expires)
        return grant.token

    def installations(self) -> list[int]:
        with self.integration() as integration:
            return [installation.id for installation in integration.get_installations()]

    def repositories(self, installation_id: int, stats: CallStats) -> list[str]:
        """Every repository an installation can see, for the ticker."""
        from github import Github
        from github.PaginatedList import PaginatedList
        from github.Repository import Repository

        token = self.token_for(installation_id, "", stats)
        client = Github(auth=CountingAuth(lambda: token, stats), base_url=self._base_url,
                        per_page=100)
        pages = PaginatedList(Repository, client.requester, "/installation/repositories", None,
                              list_item="repositories")
        try:
            with client:
                return [repo.full_name for repo in pages]
        except GithubException as exc:
            raise GitHubError(f"cannot list the repositories of installation "
                              f"{installation_id} ({exc.status})", status=exc.status) from None


class CountingAuth(Auth.Auth):
    """The ``Authorization`` header for every PyGithub request, counted on the way out.

    PyGithub calls ``authentication`` once per request it sends (retries are counted by
    ``CappedRetry``), which makes this the one place that sees every call.
    """

    def __init__(self, token_source: Callable[[], str], stats: CallStats) -> None:
        self._token_source = token_source
        self._stats = stats

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        return self._token_source()

    def authentication(self, headers: dict[str, str]) -> None:
        self._stats.requests += 1
        headers["Authorization"] = f"{self.token_type} {self.token}"

    def mask_authentication(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = "token ***"


def credentials_from_env(github_section: Mapping[str, Any],
                         env: Mapping[str, str] | None = None,
                         clock: Clock | None = None) -> Credentials:
    """App credentials when both App variables are set, else a token; else a clear error."""
    env = os.environ if env is None else env
    app_id_env = str(github_section.get("app_id_env", "CVF_APP_ID"))
    key_env = str(github_section.get("private_key_env", "CVF_PRIVATE_KEY"))
    token_env = str(github_section.get("token_env", "GITHUB_TOKEN"))
    app_id = env.get(app_id_env, "").strip()
    key = env.get(key_env, "").strip()
    if app_id and key:
        return AppCredentials(app_id, _checked_key(_read_key(key, key_env), key_env),
                              base_url=api_url(github_section, env), clock=clock)
    if app_id or key:
        missing = key_env if app_id else app_id_env
        raise ConfigError(f"GitHub App mode needs both {app_id_env} and {key_env}; "
                          f"{missing} is not set",
                          hint=f"set {missing}, or unset both and set {token_env} instead")
    token = env.get(token_env, "").strip()
    if token:
        return TokenCredentials(token)
    raise ConfigError("no GitHub credentials found",
                      hint=f"set {token_env} to a token, or {app_id_env} and {key_env} "
                           f"for a GitHub App")


def _checked_key(pem: str, env_name: str) -> str:
    """Refuse a broken key at start-up, naming the variable and never quoting the key."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{env_name} does not hold a usable PEM private key",
                          hint="download a new private key from the GitHub App's settings "
                               "and give its text or its file path") from None
    return pem


def _read_key(value: str, env_name: str) -> str:
    """The PEM text itself, or a path to the .pem file (easier in a service unit)."""
    if value.startswith("-----BEGIN"):
        return value.replace("\\n", "\n")
    path = Path(value)
    try:
        return path.read_text("utf-8")
    except OSError:
        raise ConfigError(f"{env_name} is neither a PEM private key nor a readable file",
                          hint="paste the key (-----BEGIN ... KEY-----) or give the "
                               ".pem file's path") from None
