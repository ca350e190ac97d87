"""CLI commands, one module per concern. Each module exposes ``register(cli)``.

A command's module is imported only when that command runs (or its help is asked for):
``cvf --help`` lists the commands from ``COMMANDS`` below without importing any of them,
so no command pays for another's libraries (numpy, PyGithub, jsonschema, cryptography).
``tests/test_cli_lazy.py`` holds ``COMMANDS`` to what the modules really register.
"""

from __future__ import annotations

import importlib

import click

# Concern modules, in the order they register. A module added here must define
# ``register(cli: click.Group) -> None``.
MODULES: tuple[str, ...] = ("rfc", "rfc_governance", "github", "queue", "cert", "routing",
                            "metrics", "action", "app")

# Each top-level command: the modules that build it (in order), and the first paragraph
# of its help, which is what ``cvf --help`` shows beside its name.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "action": (("action",),
               "Run the GitHub Action: the command in $CVF_COMMAND with the CVF_* inputs."),
    "app": (("app",), "GitHub App set-up: create the App from the manifest."),
    "cert": (("cert",),
             "Certification: keys, certificates, revocation, progress and the catalog."),
    "check": (("rfc", "rfc_governance"),
              "Validate the config and every RFC, then print the RFC board."),
    "deliveries": (("queue",),
                   "Webhook deliveries in the queue (scale-out mode): list, replay, prune, "
                   "migrate."),
    "handle": (("github",),
               "Run the handlers once for one event (`cvf action` does this for command: "
               "handle)."),
    "metrics": (("metrics",), "Execution metrics: store, reports, alerts."),
    "rfc": (("rfc", "rfc_governance"), "RFC documents: create, lint and index them."),
    "route": (("routing",),
              "Preview which agent runs a skill and what must happen first (R0–R3)."),
    "serve": (("github",),
              "Run the webhook app with Flask's development server (production: gunicorn)."),
    "tick": (("github",),
             "Run every periodic job once: RFC periods and reminders, reaction votes, "
             "metrics collection and alerts."),
    "worker": (("queue",),
               "Run queued webhook deliveries (scale-out mode) until SIGINT/SIGTERM."),
}


def load(cli: click.Group, modules: tuple[str, ...]) -> None:
    """Import ``modules`` and let each add its commands to ``cli`` (once per module)."""
    loaded: set[str] = cli.__dict__.setdefault("_cvf_loaded", set())
    for name in modules:
        if name not in loaded:
            loaded.add(name)
            importlib.import_module(f"bot.commands.{name}").register(cli)


def register_all(cli: click.Group) -> None:
    load(cli, MODULES)
