"""The project's own error types.

Every error a user can cause (bad config, bad RFC, bad command, bad input file) is a
``CvfError``: the CLI and the webhook app turn these into a clear message and an exit
code, never a traceback. Anything else escaping is a bug.
"""

from __future__ import annotations


class CvfError(Exception):
    """A problem the user can fix: says where it is and how to fix it."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class ConfigError(CvfError):
    """The configuration file is missing, unreadable or invalid."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None,
                 problems: list[str] | None = None):
        super().__init__(message, where=where, hint=hint)
        self.problems = problems or [str(self)]


class InputError(CvfError):
    """A file or payload given to the bot cannot be used as it is."""
