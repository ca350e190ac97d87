"""Lint RFC files: run every rule, then say what is wrong in the form the reader needs.

Three outputs from one list of diagnostics: ``path:line:col: RULE-ID message`` lines
with a hint for people, JSON for tools, and ``::error`` workflow commands so GitHub
shows each problem on the line of the pull request that caused it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.rfc.document import DocumentError, RfcDocument, load_rfc, parse_rfc, rfc_files
from bot.rfc.lint_rules import RULE_BY_ID, RULES, Rule, build_context, check_document

__all__ = ["RULES", "Diagnostic", "LintResult", "Rule", "Source", "directory_sources",
           "display_path", "lint_documents", "lint_sources", "lint_texts"]

#: A file to read and the path to show for it (relative to the repository root).
Source = tuple[Path, str]


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str
    line: int
    column: int
    rule: str
    message: str
    hint: str | None = None

    @property
    def severity(self) -> str:
        return RULE_BY_ID[self.rule].severity

    @property
    def name(self) -> str:
        return RULE_BY_ID[self.rule].name

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "column": self.column, "rule": self.rule,
                "name": self.name, "severity": self.severity, "message": self.message,
                "hint": self.hint}

    def text(self) -> str:
        label = f"{self.rule} warning:" if self.severity == "warning" else self.rule
        out = f"{self.path}:{self.line}:{self.column}: {label} {self.message}"
        if self.hint:
            out += f"\n    hint: {self.hint}"
        return out

    def github(self) -> str:
        """A workflow command (``::error file=...::``) that annotates the PR's line."""
        props = ",".join(f"{k}={_escape_property(v)}" for k, v in (
            ("file", self.path), ("line", str(self.line)), ("col", str(self.column)),
            ("title", f"{self.rule} {self.name}")))
        message = self.message + (f"\nhint: {self.hint}" if self.hint else "")
        return f"::{self.severity} {props}::{_escape_data(message)}"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


@dataclass
class LintResult:
    files: int
    diagnostics: list[Diagnostic]
    #: The checked files that could be parsed (possibly with lint problems).
    documents: list[RfcDocument] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        files = "1 file" if self.files == 1 else f"{self.files} files"
        if not self.diagnostics:
            return f"{files} checked: no problems"
        return (f"{files} checked: {_count(len(self.errors), 'error')}, "
                f"{_count(len(self.warnings), 'warning')}")

    def as_text(self) -> str:
        lines = [d.text() for d in self.diagnostics]
        return "\n".join([*lines, self.summary()])

    def as_json(self) -> str:
        return json.dumps({"files": self.files, "errors": len(self.errors),
                           "warnings": len(self.warnings),
                           "diagnostics": [d.as_dict() for d in self.diagnostics]}, indent=2)

    def as_github(self) -> str:
        return "\n".join(d.github() for d in self.diagnostics)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def lint_documents(targets: Sequence[RfcDocument], *, others: Sequence[RfcDocument] = (),
                   failures: Sequence[DocumentError] = (),
                   types: Sequence[str]) -> LintResult:
    """Lint ``targets``; ``others`` are the rest of the RFCs, for numbers and references."""
    seen = {doc.path for doc in targets}
    context = build_context([*targets, *(d for d in others if d.path not in seen)], types)
    diagnostics = [Diagnostic(f.path, f.line, 1, f.rule, f.message, f.hint) for f in failures]
    for doc in targets:
        diagnostics.extend(Diagnostic(doc.path, f.line, f.column, f.rule, f.message, f.hint)
                           for f in check_document(doc, context))
    diagnostics.sort()
    return LintResult(files=len(targets) + len(failures), diagnostics=diagnostics,
                      documents=list(targets))


def lint_texts(targets: Mapping[str, str], *, others: Mapping[str, str] | None = None,
               types: Sequence[str]) -> LintResult:
    """Lint file contents held in memory (e.g. a pull request's RFC files), path -> text."""
    docs, failures = _parse_all(targets.items())
    other_docs, _ = _parse_all((others or {}).items())
    return lint_documents(docs, others=other_docs, failures=failures, types=types)


def lint_sources(targets: Sequence[Source], *, corpus: Sequence[Source] = (),
                 types: Sequence[str]) -> LintResult:
    """Lint files on disk; ``corpus`` (usually the whole RFC folder) resolves references."""
    loaded: dict[str, RfcDocument | DocumentError] = {}

    def load(file: Path, shown: str) -> RfcDocument | DocumentError:
        key = _key(file)
        if key not in loaded:
            try:
                loaded[key] = load_rfc(file, display=shown)
            except DocumentError as exc:
                loaded[key] = exc
        return loaded[key]

    docs: list[RfcDocument] = []
    failures: list[DocumentError] = []
    target_keys: set[str] = set()
    for file, shown in targets:
        if _key(file) in target_keys:
            continue
        target_keys.add(_key(file))
        result = load(file, shown)
        if isinstance(result, DocumentError):
            failures.append(result)
        else:
            docs.append(result)
    others: list[RfcDocument] = []
    for file, shown in corpus:
        if _key(file) in target_keys:
            continue
        result = load(file, shown)
        if isinstance(result, RfcDocument):
            others.append(result)
    return lint_documents(docs, others=others, failures=failures, types=types)


def _key(file: Path) -> str:
    # The same file named two ways (relative, absolute, with "..") is read once.
    return os.path.normpath(file.absolute())


def _parse_all(items: Any) -> tuple[list[RfcDocument], list[DocumentError]]:
    docs: list[RfcDocument] = []
    failures: list[DocumentError] = []
    for path, text in items:
        try:
            docs.append(parse_rfc(text, path=path))
        except DocumentError as exc:
            failures.append(exc)
    return docs, failures


def display_path(file: Path, root: Path) -> str:
    """``file`` relative to the repository root when inside it, with forward slashes."""
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return file.as_posix()


def directory_sources(root: Path, directory: str) -> list[Source]:
    """Every RFC file of the configured folder, with its display path."""
    prefix = Path(directory)
    return [(file, (prefix / file.name).as_posix()) for file in rfc_files(root / directory)]
