"""Extra web pages and APIs, one module per concern, mounted by ``bot.app.create_app``.

A module listed in ``WEB_MODULES`` defines ``create_blueprint(config, state) -> Blueprint``;
``state`` is the app's ``AppState`` (config, clock, GitHub factory) so a page can read
what the webhook side sees without importing it.
"""

from __future__ import annotations

import importlib
from typing import Any

from flask import Flask

from bot.config import Config

WEB_MODULES: tuple[str, ...] = ("metrics",)


def register_blueprints(app: Flask, config: Config, state: Any) -> None:
    for name in WEB_MODULES:
        module = importlib.import_module(f"bot.web.{name}")
        app.register_blueprint(module.create_blueprint(config, state))
