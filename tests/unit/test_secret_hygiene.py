"""No secret is printed: repr, validation errors and the keyring's own repr."""

from __future__ import annotations

import pytest

from kemi_stats.errors import ValidationError
from kemi_stats.keyring import Keyring, KeyringError
from kemi_stats.registry.models import Credential, Receiver
from kemi_stats.registry.store import parse_doc


def test_repr_masks_secret_fields_and_redacts_receiver_urls() -> None:
    receiver = Receiver(
        url="https://user:pw@hooks.example.com/services/T0/B0/XYZ",
        secret="topsecret-0123456789",
        bearer_token="bearer-abc",
        headers={"X-Api-Key": "k-123"},
    )
    for text in (repr(receiver), str(receiver), f"{receiver!r}"):
        for secret in ("topsecret", "bearer-abc", "k-123", "pw@", "services/T0"):
            assert secret not in text
    assert "hooks.example.com" in repr(receiver)
    cred = Credential(version="2c", community="c0mmunity")
    assert "c0mmunity" not in repr(cred)


@pytest.mark.parametrize(
    ("kind", "doc", "secret"),
    [
        ("credential", {"community": 123456789}, "123456789"),
        (
            "credential",
            {"version": "3", "user": "u", "auth": "SHA", "auth_key": 98765432},
            "98765432",
        ),
        ("token", {"hash": "kemi_RAWTOKENPASTEDHERE"}, "RAWTOKEN"),
        ("receiver", {"url": "https://h.example/x", "secret": ["s3cr3t-list"]}, "s3cr3t"),
    ],
)
def test_validation_errors_say_invalid_value_and_never_echo_a_secret(
    kind: str, doc: dict[str, object], secret: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_doc(kind, "x", doc)
    assert "invalid value" in str(caught.value)
    assert secret not in str(caught.value)


def test_keyring_repr_shows_ids_not_keys() -> None:
    ring = Keyring.generate("k1")
    assert "k1" in repr(ring)
    assert ring.dumps().split('"k1": "')[1][:20] not in repr(ring)


def test_sealed_value_opens_only_in_its_own_place_and_under_its_key() -> None:
    ring = Keyring.generate("k1")
    sealed = ring.seal("public", "credential/a/community")
    assert "public" not in sealed and sealed.startswith("$kemi$v1$k1$")
    assert ring.open(sealed, "credential/a/community") == "public"
    with pytest.raises(KeyringError, match="does not open"):
        ring.open(sealed, "credential/b/community")
    other = Keyring.generate("k2")
    with pytest.raises(KeyringError, match="sealed with key 'k1'"):
        other.open(sealed, "credential/a/community")


def test_keyring_files_are_refused_with_the_reason(tmp_path: object) -> None:
    with pytest.raises(KeyringError, match="current 'nope' is not one of its keys"):
        Keyring.parse('{"current": "nope", "keys": {}}', "test")
    with pytest.raises(KeyringError, match="expected 32 bytes"):
        Keyring.parse('{"current": "a", "keys": {"a": "c2hvcnQ="}}', "test")
