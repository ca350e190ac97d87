"""The README's gunicorn command: its config file loads and caps malloc arenas per worker."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import pytest
from gunicorn.config import Config

from bot import gunicorn_conf

ROOT = Path(__file__).resolve().parent.parent


def readme_command() -> list[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    line = next(line.strip() for line in text.splitlines()
                if line.strip().startswith("gunicorn "))
    return [part.strip("'") for part in re.findall(r"'[^']*'|\S+", line)][1:]


def test_readme_command_uses_the_config_file() -> None:
    cfg = Config()
    args = cfg.parser().parse_args(readme_command())
    assert args.config == "python:bot.gunicorn_conf"
    # What gunicorn does with a python: config: every module setting through its validator.
    for name in dir(gunicorn_conf):
        if name in cfg.settings:
            cfg.set(name, getattr(gunicorn_conf, name))
    assert (cfg.workers, cfg.worker_class_str, cfg.worker_connections) == (2, "gevent", 1000)
    assert cfg.post_fork is gunicorn_conf.post_fork


def test_an_operator_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert gunicorn_conf.cap_malloc_arenas() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_arenas_are_capped_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert gunicorn_conf.cap_malloc_arenas() is True
