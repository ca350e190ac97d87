"""JSON from strangers, with a bound on nesting.

Python's JSON decoder (and every consumer that walks the result, ``json.dumps``
included) recurses once per level of nesting, so a body of 100,000 ``[`` raises
``RecursionError`` straight past the error handlers. The depth is therefore measured
*before* parsing, without recursion: strings are cut out, the brackets left are counted
as +1/-1 and their running sum's maximum is the depth. A document with fewer brackets
than the limit cannot be too deep, so ordinary payloads pay two ``str.count`` calls.

No webhook payload, execution record or API body the bot reads comes near the limit
(GitHub's payloads nest about 6 levels deep).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class TooDeep(ValueError):
    """The document nests deeper than ``MAX_DEPTH``: refused before it is parsed."""

    def __init__(self, depth: int, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"JSON nested {depth} levels deep; at most {limit} levels are read")
        self.depth = depth
        self.limit = limit


def depth(data: str | bytes) -> int:
    """How deep the arrays and objects of ``data`` nest (strings do not count)."""
    import numpy as np  # only for documents with many brackets (see check_depth)

    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    brackets = _STRING.sub(b"", raw).translate(None, delete=_NOT_BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, dtype=np.uint8)
    signs = np.where((steps == ord("[")) | (steps == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(signs).max())


def check_depth(data: str | bytes, limit: int = MAX_DEPTH) -> None:
    """Raise ``TooDeep`` when ``data`` nests deeper than ``limit``; cheap when it cannot."""
    if isinstance(data, str):
        count = data.count("[") + data.count("{")
    else:
        count = data.count(b"[") + data.count(b"{")
    if count <= limit:
        return
    found = depth(data)
    if found > limit:
        raise TooDeep(found, limit)


def loads(data: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted text: ``TooDeep`` (a ``ValueError``) past ``limit``."""
    check_depth(data, limit)
    return json.loads(data)
