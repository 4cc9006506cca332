"""Relay API keys: ``rly_<lookup>_<secret><checksum>``.

Base62 only inside the parts, so a scanner can match the whole key with one
regular expression. The CRC32 checksum rejects typos and junk before any
database query.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass

ALPHABET = string.digits + string.ascii_letters
PREFIX = "rly_"
LOOKUP_LEN = 12
SECRET_LEN = 32
CHECKSUM_LEN = 6
KEY_RE = re.compile(rf"^rly_([0-9A-Za-z]{{{LOOKUP_LEN}}})_([0-9A-Za-z]{{{SECRET_LEN + CHECKSUM_LEN}}})$")


class MalformedKey(ValueError):
    pass


@dataclass(frozen=True)
class ParsedKey:
    lookup: str
    secret: str


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LEN)


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def generate() -> tuple[str, ParsedKey]:
    lookup, secret = _random(LOOKUP_LEN), _random(SECRET_LEN)
    body = f"{PREFIX}{lookup}_{secret}"
    return body + _checksum(body), ParsedKey(lookup, secret)


def parse(key: object) -> ParsedKey:
    if not isinstance(key, str):
        raise MalformedKey("API key must be a string")
    match = KEY_RE.match(key)
    if not match:
        raise MalformedKey("malformed API key")
    lookup, tail = match.groups()
    secret, checksum = tail[:SECRET_LEN], tail[SECRET_LEN:]
    if not hmac.compare_digest(checksum, _checksum(f"{PREFIX}{lookup}_{secret}")):
        raise MalformedKey("malformed API key")
    return ParsedKey(lookup, secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
