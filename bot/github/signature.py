"""Webhook signatures (``X-Hub-Signature-256``), free of any web framework.

GitHub signs the raw body with HMAC-SHA256 keyed by the webhook secret. The check runs
on the bytes before anything parses them, compares in constant time, and accepts the
previous secret too so a secret can be rotated without dropping deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value GitHub would send for ``body``."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True when ``header`` is the signature of ``body`` under any non-empty secret."""
    if not header or not header.startswith(PREFIX):
        return False
    given = header.encode("ascii", "replace")
    ok = False
    for secret in secrets:
        if secret:
            # No early exit: checking every secret keeps the time independent of which matched.
            ok |= hmac.compare_digest(sign(body, secret).encode("ascii"), given)
    return ok
