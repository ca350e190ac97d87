"""CLI commands, one module per concern. Each module exposes ``register(cli)``."""

from __future__ import annotations

import importlib

import click

# Concern modules, in the order they appear in ``cvf --help``. A module added here
# must define ``register(cli: click.Group) -> None``.
MODULES: tuple[str, ...] = ("rfc", "rfc_governance", "github", "queue", "cert", "routing",
                            "metrics", "action")


def register_all(cli: click.Group) -> None:
    for name in MODULES:
        importlib.import_module(f"bot.commands.{name}").register(cli)
