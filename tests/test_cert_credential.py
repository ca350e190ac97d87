"""Certificates: Open Badges 3.0 credentials signed with Ed25519, verified offline, with
each kind of tampering named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.certification.credential import (
    Issuer,
    b58decode,
    b58encode,
    build_credential,
    canonical,
    dump_credential,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_credential,
    verify_credential,
)
from bot.certification.program import parse_program
from bot.certification.registry import Revocation
from bot.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PRIVATE, PUBLIC = generate_keypair()
KEY, PUB = load_private_key(PRIVATE), load_public_key(PUBLIC)


def issued(score: int = 82, *, valid_for: timedelta | None = timedelta(days=730)) -> str:
    program = parse_program((ROOT / "certification/program.yml").read_text("utf-8"))
    credential = build_credential(
        program.level("foundation"), login="alice", score=score,
        evidence="https://github.com/octo-org/governance/pull/10",
        issuer=Issuer("https://github.com/octo-org", "Octo"), issued=NOW, valid_for=valid_for)
    return dump_credential(sign_credential(credential, KEY, NOW))


def problems(text: str, **kwargs) -> tuple[str, ...]:
    kwargs.setdefault("public_key", PUB)
    kwargs.setdefault("now", NOW + timedelta(days=1))
    return verify_credential(text, **kwargs).problems


def test_issued_credential_is_an_open_badge_and_verifies():
    text = issued()
    doc = json.loads(text)
    assert doc["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert doc["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    subject = doc["credentialSubject"]
    assert subject["achievement"]["name"] == "CVF Foundation"
    assert subject["result"][0]["value"] == "82"
    assert doc["evidence"][0]["id"].endswith("/pull/10")
    assert doc["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert doc["proof"]["verificationMethod"].startswith("did:key:z6Mk")
    assert problems(text) == ()


def test_a_changed_score_breaks_the_signature_and_is_named_against_the_record():
    tampered = issued().replace('"value": "82"', '"value": "99"')
    found = problems(tampered, recorded={"score": 82, "login": "alice"})
    assert found == (
        'credentialSubject.result[0].value: is "99" but the issuer recorded "82"',
        "proof.proofValue: the signature does not match the content: the credential (or its "
        "proof options) was changed after it was signed")


def test_each_kind_of_damage_is_named():
    doc = json.loads(issued())
    doc["credentialSubject"]["result"][0]["value"] = "high"
    del doc["evidence"]
    found = problems(json.dumps(doc))
    assert 'credentialSubject.result[0].value: must be a score from "0" to "100", got "high"' \
        in found
    assert "evidence[0].id: missing" in found
    unsigned = json.loads(issued())
    del unsigned["proof"]
    assert problems(json.dumps(unsigned)) == ("proof: missing; the credential is not signed",)
    assert problems("{ not json")[0].startswith("line 1 column 3: not valid JSON")


def test_a_signature_by_another_key_is_refused():
    other_private, _ = generate_keypair()
    doc = json.loads(issued())
    del doc["proof"]
    forged = dump_credential(sign_credential(doc, load_private_key(other_private), NOW))
    found = problems(forged)
    assert len(found) == 1
    assert found[0].startswith("proof.verificationMethod: signed by a key that is not the "
                               "issuer's published key")


def test_expiry_and_revocation():
    text = issued(valid_for=timedelta(days=30))
    assert problems(text, now=NOW + timedelta(days=31)) == (
        "validUntil: the credential expired on 2026-03-31T12:00:00Z",)
    cred_id = json.loads(text)["id"]
    found = problems(text, revoked={cred_id: Revocation(cred_id, "exam leaked", "2026-03-02")})
    assert found == ("id: the credential was revoked on 2026-03-02 (exam leaked)",)


def test_keys_that_are_not_ed25519_pem_are_clear_errors():
    with pytest.raises(InputError, match="not a PEM private key"):
        load_private_key("-----BEGIN NOTHING-----\n")
    with pytest.raises(InputError, match="not a PEM public key"):
        load_public_key(b"hello")


def test_canonical_json_is_sorted_compact_and_refuses_floats():
    assert canonical({"b": [1, "é"], "a": None}) == '{"a":null,"b":[1,"é"]}'.encode()
    with pytest.raises(InputError, match="floating-point"):
        canonical({"score": 8.5})


@given(st.binary(max_size=80))
def test_base58_round_trips(data):
    assert b58decode(b58encode(data)) == data


def test_the_issuer_comes_from_the_config_or_the_repository_never_a_default_org():
    from bot.certification.credential import issuer_for
    from bot.errors import ConfigError

    assert issuer_for({"issuer": {}}, "octo-org/app") == Issuer(
        "https://github.com/octo-org", "octo-org certification")
    set_ = {"issuer": {"id": "https://example.org/certs", "name": "Example"}}
    assert issuer_for(set_, "octo-org/app") == Issuer("https://example.org/certs", "Example")
    with pytest.raises(ConfigError, match="certification.issuer.id is not set"):
        issuer_for({"issuer": {}}, None)
    from bot.config import parse_config
    assert "id" not in parse_config("").section("certification")["issuer"]
