"""Credentials: token or GitHub App, installation tokens cached and refreshed, API URL choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config import parse_config
from bot.errors import ConfigError
from bot.github.auth import AppCredentials, TokenCredentials, api_url, credentials_from_env
from bot.github.factory import factory_from_config

API = "https://api.github.com:443"


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_api_url_env_wins_over_config_then_default() -> None:
    section = parse_config("github:\n  api_url: http://127.0.0.1:9\n").section("github")
    assert api_url(section, {"GITHUB_API_URL": "https://ghe.local/api/v3/"}) == \
        "https://ghe.local/api/v3"
    assert api_url(section, {}) == "http://127.0.0.1:9"
    assert api_url(parse_config("").section("github"), {}) == "https://api.github.com"


def test_token_mode_and_missing_credentials() -> None:
    section = parse_config("").section("github")
    creds = credentials_from_env(section, {"GITHUB_TOKEN": "ghs_abc"})
    assert isinstance(creds, TokenCredentials) and "ghs_abc" not in repr(creds)
    with pytest.raises(ConfigError, match="no GitHub credentials") as info:
        credentials_from_env(section, {})
    assert "GITHUB_TOKEN" in str(info.value) and "CVF_APP_ID" in str(info.value)
    with pytest.raises(ConfigError, match="needs both CVF_APP_ID and CVF_PRIVATE_KEY"):
        credentials_from_env(section, {"CVF_APP_ID": "12"})


@responses.activate
def test_installation_tokens_are_cached_and_refreshed_before_expiry(pem: str) -> None:
    now = [datetime(2024, 5, 1, 12, 0, tzinfo=UTC)]
    expiry = now[0] + timedelta(hours=1)
    grants = iter(["ghs_first", "ghs_second"])

    def grant(request: object) -> tuple[int, dict[str, str], str]:
        import json
        return 201, {}, json.dumps({"token": next(grants),
                                    "expires_at": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")})

    responses.add_callback(responses.POST, f"{API}/app/installations/42/access_tokens",
                           callback=grant)
    responses.get(f"{API}/repos/octo/demo/collaborators/alice/permission",
                  json={"permission": "write"})
    config = parse_config("")
    env = {"CVF_APP_ID": "1234", "CVF_PRIVATE_KEY": pem}
    factory = factory_from_config(config, env, clock=lambda: now[0])
    assert isinstance(factory.credentials, AppCredentials)
    assert pem not in repr(factory.credentials)

    first = factory("octo/demo", 42)
    assert first.collaborator_permission("alice") == "write"
    assert first.stats.requests == 2  # the token grant and the read
    second = factory("octo/demo", 42)
    assert second.collaborator_permission("alice") == "write"
    assert second.stats.requests == 1  # cached token
    auth_headers = [c.request.headers["Authorization"] for c in responses.calls
                    if "permission" in c.request.url]
    assert auth_headers == ["token ghs_first", "token ghs_first"]

    now[0] = expiry - timedelta(minutes=4)  # inside the refresh margin
    third = factory("octo/demo", 42)
    third.collaborator_permission("alice")
    assert responses.calls[-1].request.headers["Authorization"] == "token ghs_second"
    jwt_call = [c for c in responses.calls if "access_tokens" in c.request.url][0]
    assert jwt_call.request.headers["Authorization"].startswith("Bearer ")


def test_a_broken_private_key_is_named_not_quoted() -> None:
    broken = ("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n"
              "-----END PRIVATE KEY-----\n")
    section = parse_config("").section("github")
    with pytest.raises(ConfigError, match="CVF_PRIVATE_KEY does not hold a usable PEM") as info:
        credentials_from_env(section, {"CVF_APP_ID": "1", "CVF_PRIVATE_KEY": broken})
    assert "c2VjcmV0" not in str(info.value)
