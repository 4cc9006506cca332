"""Encryption of shared credentials: at rest, and for the relays they are sent to.

At rest: AES-256-GCM under the ``CREDENTIAL_KEYS`` ring, the first key
encrypting, all of them decrypting, and the row bound as associated data so
that a ciphertext copied onto another row does not decrypt.

To relays: ``hex(iv):hex(tag):hex(ciphertext)`` under SHA-256 of the relay's
transport secret (``assignments.transport``), the format the original relay CLI decrypts.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from assignments.transport import DecryptionError, KeyRing, key_ring

__all__ = ["DecryptionError", "KeyRing", "credential_keys", "seal", "unseal", "encrypt_for_relay", "decrypt_from_hub"]

NONCE_BYTES = 12
TAG_BYTES = 16


def credential_keys() -> KeyRing:
    return key_ring(settings.CREDENTIAL_KEYS, "CREDENTIAL_KEYS")


def seal(plaintext: str, aad: str) -> tuple[str, bytes]:
    """Encrypt under the primary credential key; returns (key id, nonce+ciphertext)."""
    ring = credential_keys()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(ring.key(ring.primary_id)).encrypt(nonce, plaintext.encode(), aad.encode())
    return ring.primary_id, nonce + sealed


def unseal(key_id: str, blob: bytes, aad: str) -> str:
    key = credential_keys().key(key_id)
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad.encode()).decode()
    except (InvalidTag, ValueError):
        raise DecryptionError("ciphertext does not open under its key for this row") from None


def encrypt_for_relay(transport_secret: str, plaintext: str) -> str:
    key = hashlib.sha256(transport_secret.encode()).digest()
    iv = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(iv, plaintext.encode(), None)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    return f"{iv.hex()}:{tag.hex()}:{ciphertext.hex()}"


def decrypt_from_hub(transport_secret: str, value: str) -> str:
    """The relay's side of :func:`encrypt_for_relay`; used by tests and tooling."""
    iv_hex, tag_hex, ct_hex = value.split(":")
    key = hashlib.sha256(transport_secret.encode()).digest()
    data = bytes.fromhex(ct_hex) + bytes.fromhex(tag_hex)
    return AESGCM(key).decrypt(bytes.fromhex(iv_hex), data, None).decode()
