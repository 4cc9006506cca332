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


KEY_BYTES = 32


def read_key_ring(spec: object) -> tuple[dict[str, bytes], list[str]]:
    """The keys of a key ring setting by id, the primary first, and what is wrong with it.

    Each problem names its entry by position only, never any part of the key material, so that
    the system checks (``relayhub.checks``) and start-up errors can show it.
    """
    if not isinstance(spec, str):
        return {}, ["must be a string"]
    entries = [entry for entry in (part.strip() for part in spec.split(",")) if entry]
    if not entries:
        return {}, ["holds no key"]
    keys: dict[str, bytes] = {}
    problems: list[str] = []
    numbers: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition(":")
        try:
            key: bytes | None = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            key = None
        if not sep or not key_id:
            problem = "has no key id (expected 'id:<base64>')"
        elif key is None:
            problem = "is not valid base64 after its key id"
        elif len(key) != KEY_BYTES:
            problem = f"decodes to {len(key)} bytes; it must be {KEY_BYTES}"
        elif key_id in keys:
            problem = f"repeats the key id of entry {numbers[key_id]}"
        else:
            keys[key_id], numbers[key_id] = key, number
            continue
        problems.append(f"entry {number} of {len(entries)} {problem}")
    return keys, problems


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]
    primary_id: str

    @classmethod
    def parse(cls, spec: str, setting: str) -> KeyRing:
        keys, problems = read_key_ring(spec)
        if problems:
            raise ImproperlyConfigured(f"{setting}: {'; '.join(problems)}")
        return cls(keys=keys, primary_id=next(iter(keys)))

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
