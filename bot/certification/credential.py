"""Certificates as Open Badges 3.0 credentials (W3C Verifiable Credentials), signed with Ed25519.

Proof format (a Data Integrity proof following the ``eddsa-jcs-2022`` cryptosuite)::

    "proof": {
      "type": "DataIntegrityProof",
      "cryptosuite": "eddsa-jcs-2022",
      "created": "2026-01-02T03:04:05Z",
      "verificationMethod": "did:key:z6Mk…#z6Mk…",   # the issuer's Ed25519 public key
      "proofPurpose": "assertionMethod",
      "proofValue": "z…"                              # base58btc Ed25519 signature
    }

The signed bytes are ``SHA-256(canonical(proof options)) || SHA-256(canonical(credential
without "proof"))`` where the proof options are the proof without ``proofValue`` plus the
credential's ``@context``, and ``canonical`` is JSON Canonicalization (RFC 8785): keys
sorted by UTF-16 code units, no whitespace, UTF-8. Credentials hold no floating-point
numbers (the score is a string, as Open Badges writes results), so canonical numbers are
plain integers. Verification needs only the file and the issuer's public key: no network.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.certification.program import Level
from bot.certification.registry import Revocation, iso, parse_time
from bot.errors import ConfigError, InputError

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CRYPTOSUITE = "eddsa-jcs-2022"
_ED25519_MULTICODEC = b"\xed\x01"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


# -- canonical JSON and encodings ------------------------------------------------------
def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON for documents without floats (floats are refused)."""
    return _canon(value).encode("utf-8")


def _canon(value: Any) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: str(k).encode("utf-16-be"))
        return "{" + ",".join(f"{_canon(str(k))}:{_canon(value[k])}" for k in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canon(v) for v in value) + "]"
    if isinstance(value, float):
        raise InputError("a credential may not hold floating-point numbers",
                         hint="write scores and measures as strings")
    return json.dumps(value, ensure_ascii=False)


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _B58.find(char)
        if index < 0:
            raise ValueError(f"'{char}' is not a base58 character")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def did_key(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    fingerprint = "z" + b58encode(_ED25519_MULTICODEC + raw)
    return f"did:key:{fingerprint}#{fingerprint}"


def public_key_from_did(method: str) -> Ed25519PublicKey:
    if not method.startswith("did:key:z"):
        raise ValueError("expected a did:key verification method")
    raw = b58decode(method.removeprefix("did:key:z").split("#", 1)[0])
    if not raw.startswith(_ED25519_MULTICODEC) or len(raw) != 34:
        raise ValueError("the did:key is not an Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


# -- keys ------------------------------------------------------------------------------
def generate_keypair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) for a new issuer key."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def load_private_key(pem: str | bytes, *, source: str = "signing key") -> Ed25519PrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a PEM private key: {exc}", where=source,
                         hint="create one with `cvf cert keygen --out DIR`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("the signing key is not an Ed25519 key", where=source,
                         hint="create one with `cvf cert keygen --out DIR`")
    return key


def load_public_key(pem: str | bytes, *, source: str = "public key") -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a PEM public key: {exc}", where=source,
                         hint="use the public-key.pem written by `cvf cert keygen`") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError("the public key is not an Ed25519 key", where=source)
    return key


# -- building and signing --------------------------------------------------------------
@dataclass(frozen=True)
class Issuer:
    id: str
    name: str


def issuer_for(section: Mapping[str, Any], repo: str | None) -> Issuer:
    """Who signs: ``certification.issuer`` when set, else the repository's owner on GitHub.

    Never a default organisation: a credential names its real issuer, so an unset id is
    derived from the repository (``octo-org/app`` -> ``https://github.com/octo-org``) and,
    without one, is an error naming the setting to add.
    """
    configured = section.get("issuer") or {}
    owner = (repo or "").partition("/")[0]
    issuer_id = configured.get("id") or (f"https://github.com/{owner}" if owner else "")
    if not issuer_id:
        raise ConfigError("certification.issuer.id is not set and no repository is known to "
                          "derive it from", where=".github/cvf.yml",
                          hint='set certification.issuer.id: "https://github.com/my-org", or '
                               "GITHUB_REPOSITORY=owner/name")
    name = configured.get("name") or f"{owner or issuer_id} certification"
    return Issuer(str(issuer_id), str(name))


def credential_id(login: str, level: str, attempt: int, issued: datetime) -> str:
    name = f"cvf-certificate|{login.lower()}|{level}|{attempt}|{iso(issued)}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def build_credential(level: Level, *, login: str, score: int, evidence: str, issuer: Issuer,
                     issued: datetime, valid_for: timedelta | None, attempt: int = 1
                     ) -> dict[str, Any]:
    if not 0 <= score <= 100:
        raise InputError(f"score must be 0..100, got {score}")
    achievement_id = f"{issuer.id.rstrip('/')}/certification/{level.id}"
    credential: dict[str, Any] = {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": credential_id(login, level.id, attempt, issued),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": f"{level.title} — {login}",
        "issuer": {"id": issuer.id, "type": ["Profile"], "name": issuer.name},
        "validFrom": iso(issued),
        "credentialSubject": {
            "id": f"https://github.com/{login}",
            "type": ["AchievementSubject"],
            "achievement": {
                "id": achievement_id,
                "type": ["Achievement"],
                "achievementType": "Certificate",
                "name": level.title,
                "description": f"{level.focus} (CVF {level.cvf_version}, {level.hours} hours)",
                "criteria": {"narrative": f"Pass the {level.exam_label} exam with a score of at "
                                          f"least {level.pass_score} out of 100."},
                "tag": [level.id, *(m.id for m in level.modules)],
                "resultDescription": [{
                    "id": f"{achievement_id}#score", "type": ["ResultDescription"],
                    "name": "Exam score", "resultType": "Percent",
                    "valueMin": "0", "valueMax": "100", "requiredValue": str(level.pass_score),
                }],
            },
            "result": [{"type": ["Result"], "resultDescription": f"{achievement_id}#score",
                        "value": str(score), "status": "Completed"}],
        },
        "evidence": [{"id": evidence, "type": ["Evidence"], "name": "Exam submission",
                      "narrative": f"Attempt {attempt} at the {level.id} exam."}],
    }
    if valid_for is not None:
        credential["validUntil"] = iso(issued + valid_for)
    return credential


def _signing_input(unsigned: dict[str, Any], options: dict[str, Any]) -> bytes:
    config = {**options, "@context": unsigned.get("@context")}
    return hashlib.sha256(canonical(config)).digest() + hashlib.sha256(canonical(unsigned)).digest()


def sign_credential(credential: dict[str, Any], key: Ed25519PrivateKey,
                    created: datetime) -> dict[str, Any]:
    unsigned = {k: v for k, v in credential.items() if k != "proof"}
    options = {"type": "DataIntegrityProof", "cryptosuite": CRYPTOSUITE, "created": iso(created),
               "verificationMethod": did_key(key.public_key()), "proofPurpose": "assertionMethod"}
    signature = key.sign(_signing_input(unsigned, options))
    return {**unsigned, "proof": {**options, "proofValue": "z" + b58encode(signature)}}


def dump_credential(credential: dict[str, Any]) -> str:
    return json.dumps(credential, indent=2, ensure_ascii=False) + "\n"


# -- verification ----------------------------------------------------------------------
@dataclass(frozen=True)
class Verification:
    problems: tuple[str, ...]
    credential: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return not self.problems

    # These read a credential that may have failed verification (they label the rows of
    # a report), so a field of the wrong type reads as empty instead of raising.
    @property
    def login(self) -> str:
        subject = _get(self.credential, ("credentialSubject", "id"))
        return str(subject).rsplit("/", 1)[-1] if isinstance(subject, str) else ""

    @property
    def level(self) -> str:
        tag = _get(self.credential, ("credentialSubject", "achievement", "tag", 0))
        return tag if isinstance(tag, str) else ""

    @property
    def score(self) -> str:
        value = _get(self.credential, ("credentialSubject", "result", 0, "value"))
        return "" if value is None or isinstance(value, dict | list) else str(value)


def _get(doc: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(doc, list) or len(doc) <= part:
                return None
        elif not isinstance(doc, dict):
            return None
        doc = doc[part] if isinstance(part, int) else doc.get(part)
    return doc


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p)
                   for i, p in enumerate(path))


def verify_credential(text: str, *, public_key: Ed25519PublicKey | None, now: datetime,
                      revoked: dict[str, Revocation] | None = None,
                      issuer_id: str | None = None,
                      recorded: dict[str, Any] | None = None) -> Verification:
    """Every problem with a credential file, each naming the field; empty when it is valid.

    ``recorded`` is the issuer's registry entry for this id, when available: a changed
    field is then named with the value the issuer recorded.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return Verification((f"line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}",),
                            None)
    if not isinstance(doc, dict):
        return Verification(("the file is not a JSON object, so not a credential",), None)
    problems: list[str] = []

    def need(path: tuple[str | int, ...], check: Any, message: str) -> Any:
        value = _get(doc, path)
        if value is None:
            problems.append(f"{_dotted(path)}: missing")
        elif not check(value):
            problems.append(f"{_dotted(path)}: {message}, got {json.dumps(value)[:80]}")
        return value

    need(("@context",), lambda v: isinstance(v, list) and v[:1] == [VC_CONTEXT] and OB_CONTEXT in v,
         f"must start with {VC_CONTEXT} and include {OB_CONTEXT}")
    need(("type",), lambda v: isinstance(v, list) and "VerifiableCredential" in v
         and "OpenBadgeCredential" in v, "must list VerifiableCredential and OpenBadgeCredential")
    need(("id",), lambda v: isinstance(v, str) and v.startswith("urn:uuid:"), "must be a urn:uuid")
    issuer = need(("issuer", "id"), lambda v: isinstance(v, str), "must be a URL")
    if issuer_id and isinstance(issuer, str) and issuer != issuer_id:
        problems.append(f"issuer.id: {issuer!r} is not the expected issuer {issuer_id!r}")
    need(("credentialSubject", "id"), lambda v: isinstance(v, str) and
         v.startswith("https://github.com/"), "must be https://github.com/<login>")
    need(("credentialSubject", "achievement", "id"), lambda v: isinstance(v, str), "must be a URL")
    need(("credentialSubject", "achievement", "type"), lambda v: v == ["Achievement"],
         'must be ["Achievement"]')
    need(("credentialSubject", "result", 0, "value"),
         lambda v: isinstance(v, str) and v.isdigit() and 0 <= int(v) <= 100,
         "must be a score from \"0\" to \"100\"")
    need(("evidence", 0, "id"), lambda v: isinstance(v, str) and v.startswith("http"),
         "must link the submission")
    valid_from = need(("validFrom",), _is_time, "must be an ISO 8601 time")
    if _is_time(valid_from) and parse_time(valid_from) > now:
        problems.append(f"validFrom: the credential is not valid before {valid_from}")
    valid_until = _get(doc, ("validUntil",))
    if valid_until is not None:
        if not _is_time(valid_until):
            problems.append(f"validUntil: must be an ISO 8601 time, got {valid_until!r}")
        elif parse_time(valid_until) <= now:
            problems.append(f"validUntil: the credential expired on {valid_until}")
    cred_id = doc.get("id")
    if revoked and isinstance(cred_id, str) and cred_id in revoked:
        entry = revoked[cred_id]
        problems.append(f"id: the credential was revoked on {entry.date or 'an unrecorded date'}"
                        f" ({entry.reason or 'no reason given'})")
    if recorded:
        for path, key in ((("credentialSubject", "result", 0, "value"), "score"),
                          (("credentialSubject", "id"), "login"),
                          (("credentialSubject", "achievement", "tag", 0), "level"),
                          (("evidence", 0, "id"), "evidence")):
            expected = recorded.get(key)
            if key == "login" and expected is not None:
                expected = f"https://github.com/{expected}"
            value = _get(doc, path)
            if expected is not None and str(value) != str(expected):
                problems.append(f"{_dotted(path)}: is {json.dumps(value)} but the issuer "
                                f"recorded {json.dumps(str(expected))}")
    problems.extend(_proof_problems(doc, public_key))
    return Verification(tuple(problems), doc)


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


def _proof_problems(doc: dict[str, Any], public_key: Ed25519PublicKey | None) -> list[str]:
    proof = doc.get("proof")
    if not isinstance(proof, dict):
        return ["proof: missing; the credential is not signed"]
    problems = []
    if proof.get("type") != "DataIntegrityProof":
        problems.append(f"proof.type: expected \"DataIntegrityProof\", got {proof.get('type')!r}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        problems.append(f"proof.cryptosuite: expected \"{CRYPTOSUITE}\", "
                        f"got {proof.get('cryptosuite')!r}")
    try:
        signer = public_key_from_did(str(proof.get("verificationMethod", "")))
    except ValueError as exc:
        return [*problems, f"proof.verificationMethod: {exc}"]
    if public_key is not None and did_key(signer) != did_key(public_key):
        problems.append("proof.verificationMethod: signed by a key that is not the issuer's "
                        f"published key (signer {did_key(signer).split('#')[0]}, "
                        f"issuer {did_key(public_key).split('#')[0]})")
    value = str(proof.get("proofValue", ""))
    try:
        signature = b58decode(value[1:]) if value.startswith("z") else b""
    except ValueError:
        signature = b""
    if len(signature) != 64:
        return [*problems, "proof.proofValue: not a base58btc Ed25519 signature (\"z…\", 64 bytes)"]
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    unsigned = {k: v for k, v in doc.items() if k != "proof"}
    try:
        signer.verify(signature, _signing_input(unsigned, options))
    except InvalidSignature:
        problems.append("proof.proofValue: the signature does not match the content: the "
                        "credential (or its proof options) was changed after it was signed")
    except InputError as exc:
        problems.append(f"(content): {exc.message}")
    return problems
