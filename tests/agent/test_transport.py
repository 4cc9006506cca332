from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from relay_agent import transport


def hub_style_encrypt(plaintext: str, secret: str, iv_len: int = 16) -> str:
    """The hub's format, built independently: hex(iv):hex(tag):hex(ciphertext), AES-256-GCM, key SHA-256(secret)."""
    iv = os.urandom(iv_len)
    sealed = AESGCM(hashlib.sha256(secret.encode()).digest()).encrypt(iv, plaintext.encode(), None)
    return f"{iv.hex()}:{sealed[-16:].hex()}:{sealed[:-16].hex()}"


@pytest.mark.parametrize("iv_len", [12, 16])
def test_it_decrypts_the_hub_format(iv_len: int) -> None:
    assert (
        transport.decrypt(hub_style_encrypt("pässword", "transport-secret", iv_len), "transport-secret") == "pässword"
    )


def test_encrypt_produces_the_hub_format() -> None:
    value = transport.encrypt("-----BEGIN KEY-----\nabc\n", "s")

    iv, tag, ciphertext = value.split(":")
    assert len(bytes.fromhex(iv)) == 12 and len(bytes.fromhex(tag)) == 16
    assert transport.decrypt(value, "s") == "-----BEGIN KEY-----\nabc\n"


def test_a_wrong_secret_fails_cleanly() -> None:
    with pytest.raises(transport.TransportDecryptError, match="wrong shared secret"):
        transport.decrypt(transport.encrypt("x", "right"), "wrong")


@pytest.mark.parametrize("value", ["", "abc", "zz:zz:zz", "00:11", "00112233:0011:00"])
def test_malformed_values_are_refused(value: str) -> None:
    with pytest.raises(transport.TransportDecryptError):
        transport.decrypt(value, "secret")


def test_no_secret_is_a_clear_error() -> None:
    with pytest.raises(transport.TransportDecryptError, match="shared secret"):
        transport.decrypt(transport.encrypt("x", "s"), "")
