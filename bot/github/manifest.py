"""GitHub's App manifest flow, the API half: turn the redirect's one-time code into the App.

``POST /app-manifests/{code}/conversions`` is the only moment GitHub hands out the new
App's private key, webhook secret and client secret, so it lives here with every other
GitHub call: PyGithub's requester, the project's retry policy, errors as ``GitHubError``.
The call needs no credentials; the code (valid for one hour, once) is the credential.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from github import Github, GithubException
from github.GithubException import RateLimitExceededExceedsMaxWait

from bot.github.port import CallStats, GitHubError
from bot.github.retry import Sleeper, make_retry

CODE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
NEEDED = ("id", "slug", "html_url", "pem", "webhook_secret", "client_id", "client_secret")


def convert_manifest_code(code: str, *, api_url: str, attempts: int = 4,
                          max_wait: float = 60.0,
                          sleeper: Sleeper | None = None) -> dict[str, Any]:
    """The App GitHub registered from the manifest, with its credentials."""
    if not CODE.match(code):
        raise GitHubError("the code GitHub sent back is malformed; start `cvf app create` "
                          "again")
    client = Github(base_url=api_url.rstrip("/"), user_agent="cvf-governance", timeout=30,
                    retry=make_retry(attempts=attempts, max_wait=max_wait, stats=CallStats(),
                                     sleeper=sleeper))
    try:
        with client:
            _, data = client.requester.requestJsonAndCheck(
                "POST", f"/app-manifests/{code}/conversions")
    except RateLimitExceededExceedsMaxWait as exc:
        raise GitHubError(f"GitHub rate limit while creating the App: a {exc.wait:.0f}s "
                          f"wait is needed; start again later", status=exc.status) from None
    except GithubException as exc:
        message = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
        if exc.status == 404:
            raise GitHubError("GitHub does not know this App manifest code (404): codes "
                              "work once and expire after an hour; start `cvf app create` "
                              "again", status=404) from None
        raise GitHubError(f"GitHub refused to create the App ({exc.status}"
                          f"{': ' + message if message else ''})", status=exc.status) from None
    except requests.RequestException as exc:
        raise GitHubError(f"cannot reach GitHub at {api_url} while creating the App "
                          f"({type(exc).__name__}); check the network and --api-url") from None
    if not isinstance(data, dict) or any(not data.get(key) for key in NEEDED):
        missing = [key for key in NEEDED if not isinstance(data, dict) or not data.get(key)]
        raise GitHubError(f"GitHub's answer lacks {', '.join(missing)}; the App may exist "
                          f"without its key: delete it in the App settings and start again")
    return data
