"""Browser sign-in for the dashboard: the API token once, then a signed session cookie.

A browser cannot send ``Authorization: Bearer``, so ``/login`` takes the API token in a
form and answers with an HttpOnly, SameSite=Strict cookie holding an expiry, a nonce and
an HMAC of both under a key derived from the token itself. The cookie never holds the
token; changing the token signs every browser out. The cookie opens reads only (the
dashboard, ``/api/metrics``, the live stream): writes still need the bearer token, so a
page on another site can never make a signed-in browser post records.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

COOKIE = "cvf_session"
LIFETIME = 12 * 3600  # seconds a sign-in lasts


def _key(token: str) -> bytes:
    return hashlib.sha256(b"cvf-dashboard-session\0" + token.encode()).digest()


def _sign(token: str, payload: str) -> str:
    return hmac.new(_key(token), payload.encode(), hashlib.sha256).hexdigest()


def issue(token: str, now: float) -> str:
    """A cookie value valid for ``LIFETIME`` seconds from ``now``."""
    payload = f"{int(now + LIFETIME)}.{secrets.token_hex(8)}"
    return f"{payload}.{_sign(token, payload)}"


def is_valid(value: str, token: str, now: float) -> bool:
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not token:
        return False
    payload = f"{parts[0]}.{parts[1]}"
    return hmac.compare_digest(parts[2], _sign(token, payload)) and int(parts[0]) > now


def safe_next(target: str | None, default: str = "/dashboard") -> str:
    """Only a path on this server: never ``//host`` or a full URL (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
