"""The record the bot keeps in the repository: certificates issued, attempts, revocations.

``registry.json`` is rewritten whole through a compare-and-swap commit (the adapter's
``update_file``), so every change here is a pure function from the old text to the new
one; running it twice on the same event gives the same file.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml

from bot.certification.program import Program
from bot.errors import InputError

EMPTY_REGISTRY: dict[str, Any] = {"version": 1, "certificates": [], "attempts": []}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Revocation:
    id: str
    reason: str
    date: str


@dataclass
class Registry:
    data: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(EMPTY_REGISTRY))
    revoked: dict[str, Revocation] = field(default_factory=dict)
    _index: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _indexed: int = field(default=-1, repr=False)

    def _certificates_of(self, login: str) -> list[dict[str, Any]]:
        """Per-login index, so the gate costs the same with 10 or 100,000 certificates."""
        certificates = self.data["certificates"]
        if self._indexed != len(certificates):
            self._index = {}
            for cert in certificates:
                self._index.setdefault(str(cert["login"]).lower(), []).append(cert)
            self._indexed = len(certificates)
        return self._index.get(login.lower(), [])

    @property
    def certificates(self) -> list[dict[str, Any]]:
        return list(self.data["certificates"])

    @property
    def attempts(self) -> list[dict[str, Any]]:
        return list(self.data["attempts"])

    def valid_certificates(self, login: str, now: datetime) -> list[dict[str, Any]]:
        """Certificates of ``login`` that are not revoked, already valid and not expired."""
        out = []
        for cert in self._certificates_of(login):
            if cert["id"] in self.revoked:
                continue
            if parse_time(cert["issued"]) > now:
                continue
            until = cert.get("valid_until")
            if until and parse_time(until) <= now:
                continue
            out.append(cert)
        return out

    def held_levels(self, login: str, now: datetime) -> set[str]:
        return {c["level"] for c in self.valid_certificates(login, now)}

    def attempts_of(self, login: str, level: str) -> list[dict[str, Any]]:
        return [a for a in self.data["attempts"]
                if a["login"].lower() == login.lower() and a["level"] == level]

    def open_attempt(self, login: str, level: str) -> dict[str, Any] | None:
        return next((a for a in reversed(self.attempts_of(login, level))
                     if a["status"] in ("open", "reviewing")), None)

    def to_text(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True) + "\n"


def parse_registry(text: str | None, revocations: str | None = None, *,
                   source: str = "certification/registry.json") -> Registry:
    data: dict[str, Any] = copy.deepcopy(EMPTY_REGISTRY)
    if text and text.strip():
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", where=f"{source}:{exc.lineno}",
                             hint="the bot writes this file; restore it from git history") from None
        if not isinstance(loaded, dict) or not isinstance(loaded.get("certificates"), list) \
                or not isinstance(loaded.get("attempts"), list):
            raise InputError("expected an object with 'certificates' and 'attempts' lists",
                             where=source, hint="restore the file from git history")
        data = loaded
    return Registry(data=data, revoked=parse_revocations(revocations))


def parse_revocations(text: str | None, *, source: str = "certification/revocations.yml"
                      ) -> dict[str, Revocation]:
    if not text or not text.strip():
        return {}
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", where=source) from None
    items = (loaded or {}).get("revoked") if isinstance(loaded, dict) else None
    if items is None:
        return {}
    if not isinstance(items, list):
        raise InputError("'revoked' must be a list of {id, reason, date}", where=source)
    out = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("id"):
            raise InputError(f"revoked[{index}] needs an 'id'", where=source,
                             hint="each entry is {id: <certificate id>, reason: ..., date: ...}")
        out[str(item["id"])] = Revocation(str(item["id"]), str(item.get("reason", "")),
                                          str(item.get("date", "")))
    return out


def add_revocation(text: str | None, cert_id: str, reason: str, when: datetime) -> str:
    """The revocation list with ``cert_id`` added (unchanged if it is already there)."""
    loaded = yaml.safe_load(text) if text and text.strip() else None
    data = loaded if isinstance(loaded, dict) else {}
    items = data.setdefault("revoked", []) or []
    data["revoked"] = items
    if not any(isinstance(i, dict) and i.get("id") == cert_id for i in items):
        items.append({"id": cert_id, "reason": reason, "date": iso(when)})
    header = ("# Revoked certificates. `cvf cert verify` and every gate treat these as "
              "invalid.\n")
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class RequestDecision:
    allowed: bool
    attempt: int
    reason: str = ""
    existing: dict[str, Any] | None = None


def check_request(program: Program, registry: Registry, login: str, level_id: str,
                  now: datetime, *, cooldown: timedelta, max_attempts: int | None
                  ) -> RequestDecision:
    """Whether ``login`` may sit ``level_id`` now, and as which attempt number."""
    level = program.level(level_id)
    held = registry.held_levels(login, now)
    if level.id in program.covered_by(held):
        return RequestDecision(False, 0, f"you already hold {level.id} (or a level above it)")
    missing = program.missing_prerequisites(level.id, held)
    if missing:
        return RequestDecision(False, 0, f"{level.id} needs {', '.join(missing)} first; "
                                         f"request that exam with `/cert request {missing[0]}`")
    attempts = registry.attempts_of(login, level.id)
    existing = registry.open_attempt(login, level.id)
    if existing is not None:
        return RequestDecision(False, int(existing["attempt"]),
                               f"attempt {existing['attempt']} is still open", existing)
    if max_attempts is not None and len(attempts) >= max_attempts:
        return RequestDecision(False, 0, f"you have used all {max_attempts} attempts at "
                                         f"{level.id}")
    failed = [a for a in attempts if a["status"] == "failed" and a.get("graded_at")]
    if failed:
        last = max(parse_time(a["graded_at"]) for a in failed)
        ready = last + cooldown
        if now < ready:
            return RequestDecision(False, 0, f"a retake of {level.id} is possible from "
                                             f"{iso(ready)} (cool-down after the attempt "
                                             f"graded {iso(last)})")
    return RequestDecision(True, len(attempts) + 1)


def with_attempt(text: str | None, attempt: dict[str, Any]) -> str:
    """Registry text with ``attempt`` added or (same login, level, number) replaced."""
    registry = parse_registry(text)
    attempts = registry.data["attempts"]
    for index, existing in enumerate(attempts):
        if (existing["login"].lower(), existing["level"], existing["attempt"]) == \
                (attempt["login"].lower(), attempt["level"], attempt["attempt"]):
            merged = {**existing, **attempt}
            attempts[index] = merged
            break
    else:
        attempts.append(attempt)
    return registry.to_text()


def with_certificate(text: str | None, entry: dict[str, Any]) -> str:
    registry = parse_registry(text)
    if not any(c["id"] == entry["id"] for c in registry.data["certificates"]):
        registry.data["certificates"].append(entry)
    return registry.to_text()
