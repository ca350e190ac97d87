"""Jinja2 templates for every comment, report and page.

Templates are loaded from the installed package (``bot/templates`` in a wheel) or the
checkout's ``templates/`` folder, never from the working directory: on a
``pull_request_target`` run the workspace may hold a PR's files, and a PR must not be
able to replace what the bot says.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from bot.markdown import code, escape_md, escape_table_cell, fence_safe


def templates_dir() -> Path:
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        # Names end in ".j2" ("dashboard.html.j2"): match the inner extension too, or
        # select_autoescape would leave HTML pages unescaped.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "svg", "xml",
                                "html.j2", "htm.j2", "svg.j2", "xml.j2"),
            default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = escape_md
    env.filters["cell"] = escape_table_cell
    env.filters["fence_safe"] = fence_safe
    env.filters["code"] = code
    env.filters["code_cell"] = lambda text: code(text, in_table=True)
    return env


def render(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` with ``context``; missing variables are errors, not blanks."""
    return environment().get_template(name).render(**context)
