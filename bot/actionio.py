"""Talking to the GitHub Actions runner: outputs, the job summary and annotations.

Outside Actions (no ``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY``) outputs are dropped and
annotations are plain lines, so the same command reads well in a terminal.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping

# GitHub caps one step summary at 1 MiB; leave room for the cut notice.
SUMMARY_LIMIT = 1024 * 1024 - 1024


def in_actions(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, *, file: str | None = None, line: int | None = None,
               col: int | None = None, title: str | None = None) -> str:
    """One ``::error file=…,line=…::message`` workflow command (level: error|warning|notice)."""
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
    if line:
        props.append(f"line={line}")
    if col:
        props.append(f"col={col}")
    if title:
        props.append(f"title={_escape_property(title)}")
    joined = (" " + ",".join(props)) if props else ""
    return f"::{level}{joined}::{_escape_data(message)}"


def set_output(name: str, value: str, env: Mapping[str, str] | None = None) -> None:
    """Append ``name`` to ``$GITHUB_OUTPUT``, with a delimiter so multi-line values are safe."""
    path = (env if env is not None else os.environ).get("GITHUB_OUTPUT")
    if not path:
        return
    delimiter = f"cvf_{uuid.uuid4().hex}"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def add_summary(markdown: str, env: Mapping[str, str] | None = None) -> None:
    """Append markdown to ``$GITHUB_STEP_SUMMARY``, cut with a notice past GitHub's limit."""
    path = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    data = markdown.encode("utf-8")
    if len(data) > SUMMARY_LIMIT:
        markdown = data[:SUMMARY_LIMIT].decode("utf-8", "ignore")
        markdown += "\n\n_… cut: the full report is in the report file (output `report-path`)._\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n")
