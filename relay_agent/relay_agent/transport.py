"""The hub's transport encryption: `hex(iv):hex(tag):hex(ciphertext)`, AES-256-GCM, key = SHA-256(secret)."""

from __future__ import annotations

import os


class TransportDecryptError(ValueError):
    pass


def _key(secret: str) -> bytes:
    import hashlib  # on use: hashlib loads OpenSSL's libcrypto, megabytes an idle agent need not hold

    return hashlib.sha256(secret.encode("utf-8")).digest()


def encrypt(plaintext: str, secret: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    iv = os.urandom(12)
    sealed = AESGCM(_key(secret)).encrypt(iv, plaintext.encode("utf-8"), None)
    ciphertext, tag = sealed[:-16], sealed[-16:]
    return f"{iv.hex()}:{tag.hex()}:{ciphertext.hex()}"


def decrypt(encrypted_value: str, secret: str) -> str:
    if not secret:
        raise TransportDecryptError("no shared secret configured (--shared-secret)")
    parts = encrypted_value.split(":") if isinstance(encrypted_value, str) else []
    if len(parts) != 3:
        raise TransportDecryptError("encryptedValue must be hex(iv):hex(tag):hex(ciphertext)")
    try:
        iv, tag, ciphertext = (bytes.fromhex(part) for part in parts)
    except ValueError:
        raise TransportDecryptError("encryptedValue is not hex") from None
    # Imported on use: an idle agent without shared credentials never needs cryptography.
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(tag) != 16 or not 8 <= len(iv) <= 128:
        raise TransportDecryptError("encryptedValue has a bad iv or tag length")
    try:
        plain = AESGCM(_key(secret)).decrypt(iv, ciphertext + tag, None)
    except InvalidTag:
        raise TransportDecryptError("cannot decrypt encryptedValue: wrong shared secret or corrupted value") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise TransportDecryptError("decrypted value is not UTF-8") from None
