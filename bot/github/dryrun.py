"""Showing the writes a dry run would have made, so a person can review them."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from bot.github.port import WriteRecord


def readable_body(record: WriteRecord) -> object:
    """The body as sent, except a contents PUT shows its file text rather than base64."""
    body = record.body
    if isinstance(body, dict) and "/contents/" in record.path and "content" in body:
        try:
            text = base64.b64decode(str(body["content"])).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return body
        return {**body, "content": text}
    return body


def format_writes(records: Iterable[WriteRecord]) -> str:
    """One block per write: ``METHOD path`` and the JSON body indented under it."""
    blocks = []
    for record in records:
        lines = [f"{record.method} {record.path}"]
        body = readable_body(record)
        if body is not None:
            dumped = json.dumps(body, indent=2, ensure_ascii=False, default=str)
            lines += ["  " + line for line in dumped.splitlines()]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
