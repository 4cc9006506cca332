"""Key rings from settings, and each relay's transport secret.

A key ring is "id:base64key,...": the first key encrypts or derives, all of
them stay usable, so keys rotate without breaking what an older one made. A
relay's transport secret is derived from ``TRANSPORT_KEYS``, its id and its
key's lookup: re-derivable on demand and never stored. ``credentials.crypto``
encrypts with it, and keeps its own ring, ``CREDENTIAL_KEYS``, for values at rest.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


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
def key_ring(spec: str, setting: str) -> KeyRing:
    return KeyRing.parse(spec, setting)


def transport_keys() -> KeyRing:
    return key_ring(settings.TRANSPORT_KEYS, "TRANSPORT_KEYS")


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
