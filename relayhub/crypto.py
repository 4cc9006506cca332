"""Encryption for values at rest and for values sent to relays.

At rest: AES-256-GCM under a key ring ("id:base64key,..."), the first key
encrypting, all of them decrypting, and the row bound as associated data so
that a ciphertext copied onto another row does not decrypt.

To relays: ``hex(iv):hex(tag):hex(ciphertext)`` under SHA-256 of the relay's
transport secret, the format the original relay CLI decrypts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NONCE_BYTES = 12
TAG_BYTES = 16


class DecryptionError(Exception):
    """A ciphertext that does not open: wrong key, wrong row, or tampered."""


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]
    primary_id: str

    @classmethod
    def parse(cls, spec: str, setting: str) -> KeyRing:
        keys: dict[str, bytes] = {}
        primary = ""
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key_id, sep, encoded = item.partition(":")
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                key = b""
            if not sep or not key_id or len(key) != 32:
                raise ImproperlyConfigured(f"{setting}: each entry must be 'id:<base64 of 32 bytes>'")
            if key_id in keys:
                raise ImproperlyConfigured(f"{setting}: key id {key_id!r} appears twice")
            keys[key_id] = key
            primary = primary or key_id
        if not keys:
            raise ImproperlyConfigured(f"{setting} holds no key")
        return cls(keys=keys, primary_id=primary)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise DecryptionError(f"no key with id {key_id!r} is configured") from None


@cache
def _ring(spec: str, setting: str) -> KeyRing:
    return KeyRing.parse(spec, setting)


def credential_keys() -> KeyRing:
    return _ring(settings.CREDENTIAL_KEYS, "CREDENTIAL_KEYS")


def transport_keys() -> KeyRing:
    return _ring(settings.TRANSPORT_KEYS, "TRANSPORT_KEYS")


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


def derive_transport_secret(key_id: str, relay_id: str, key_lookup: str) -> str:
    """The relay's transport secret, re-derivable on demand and never stored."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=f"relayhub transport secret v1|{relay_id}|{key_lookup}".encode(),
    )
    raw = hkdf.derive(transport_keys().key(key_id))
    return "rts_" + raw.hex()


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
