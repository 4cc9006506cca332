"""The Ed25519 key that signs agent releases, and what a relay learns of it (its public half).

The private half lives in one private file (``RELAYHUB["AGENT_RELEASE_KEY_FILE"]``, 0600 in a 0700
directory), written by ``manage.py agent_release_key``. Nothing here ever puts it in a message,
log line or response: errors name the file, never its contents.

What is signed is :func:`signed_message`: the version and the SHA-256 of the wheel, so that a
signature for one release cannot be replayed for another version. The relay agent builds the same
message (relay_agent/selfupdate.py) and checks it with the public half it pinned.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from relayhub.private_files import private_dir

MESSAGE_PREFIX = b"relayhub-agent-release:v1\n"


class ReleaseKeyError(Exception):
    """No usable release key; the message names the file and never holds key material."""


def key_path() -> Path:
    return Path(settings.RELAYHUB["AGENT_RELEASE_KEY_FILE"]).expanduser()


def signed_message(version: str, sha256_hex: str) -> bytes:
    return MESSAGE_PREFIX + version.encode() + b"\n" + sha256_hex.lower().encode() + b"\n"


def create(force: bool = False) -> Ed25519PublicKey:
    """Write a new key to its file (refused if one exists, unless ``force``); its public half."""
    path = key_path()
    if path.exists() and not force:
        raise ReleaseKeyError(f"{path} exists already: keep it, or pass --force to replace it (relays that "
                              "pinned the old public key then refuse every new release)")
    private_dir(path.parent)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return key.public_key()


def private_key() -> Ed25519PrivateKey:
    path = key_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReleaseKeyError(f"no agent release key at {path}: create one with manage.py agent_release_key") from None
    except OSError as exc:
        raise ReleaseKeyError(f"the agent release key at {path} cannot be read ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ReleaseKeyError(f"{path} does not hold an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseKeyError(f"{path} does not hold an Ed25519 key")
    return key


def public_text(key: Ed25519PublicKey) -> str:
    """Base64 of the 32 raw bytes: what ``relay-agent --release-public-key`` takes."""
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def public_key_text() -> str | None:
    """The public half, or None when there is no usable key (relays are then told nothing)."""
    try:
        return public_text(private_key().public_key())
    except ReleaseKeyError:
        return None


def sign(version: str, sha256_hex: str) -> str:
    """Base64 Ed25519 signature of :func:`signed_message`."""
    return base64.b64encode(private_key().sign(signed_message(version, sha256_hex))).decode()


def verify(public_b64: str, signature_b64: str, version: str, sha256_hex: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        key.verify(base64.b64decode(signature_b64, validate=True), signed_message(version, sha256_hex))
    except (ValueError, InvalidSignature):
        return False
    return True
