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
    """One block per write: ``METHOD path``, then the body field by field, indented.

    Multi-line text (comment bodies, file contents) is shown as it would read on GitHub
    rather than as one JSON string full of ``\\n``; everything else is JSON.
    """
    blocks = []
    for record in records:
        lines = [f"{record.method} {record.path}"]
        lines += _fields(readable_body(record), "  ")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _fields(value: object, indent: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [indent + json.dumps(value, ensure_ascii=False, default=str)]
    lines = []
    for key, item in value.items():
        if isinstance(item, str) and "\n" in item:
            lines.append(f"{indent}{key}: |")
            lines += [f"{indent}  {line}" for line in item.splitlines()]
        elif isinstance(item, dict):
            lines.append(f"{indent}{key}:")
            lines += _fields(item, indent + "  ")
        else:
            lines.append(f"{indent}{key}: {json.dumps(item, ensure_ascii=False, default=str)}")
    return lines
