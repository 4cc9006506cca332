"""Encrypted local credential store; only metadata ever leaves it."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .files import create_private, ensure_private_dir, write_private

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CREDENTIAL_TYPES = ("ssh_key", "password", "api_key")
SSH_TYPES = ("ssh_key", "password")
STORAGE_MODES = ("relay_only", "shared")

_MAGIC = b"RAC2"


class CredentialStoreError(Exception):
    pass


def parse_binding(target_host: str) -> tuple[str, int | None]:
    """The host and optional port a credential is bound to: "host", "host:port", "[v6]:port" or a bare IPv6 address.

    Raises ValueError for text that names no host or has an invalid port.
    """
    text = target_host.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid target host {target_host!r}: expected [address]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text  # a name, an IPv4 address, or an IPv6 address without a port
    port: int | None = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"invalid port in target host {target_host!r}")
        port = int(port_text)
    if not host or any(c.isspace() or c in "[]/@" for c in host):
        raise ValueError(f"invalid target host {target_host!r}")
    return _normal_host(host), port


def _normal_host(host: str) -> str:
    # Host names are case-insensitive, and one IPv6 address has many spellings.
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host.lower().rstrip(".")


def binding_example(host: str, port: int) -> str:
    """How a user binds a credential to exactly this target, for error messages."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class Credential:
    name: str
    credential_type: str
    value: str = field(repr=False)
    target_host: str | None = None
    username: str | None = None
    storage_mode: str = "relay_only"
    last_updated_at: int = 0

    def metadata(self) -> dict:
        item = {
            "credentialName": self.name,
            "credentialType": self.credential_type,
            "targetHost": self.target_host,
            "storageMode": self.storage_mode,
            "lastUpdatedAt": self.last_updated_at,
        }
        if not self.target_host:
            del item["targetHost"]
        return item


class CredentialStore:
    KEY_FILE = "store.key"
    DATA_FILE = "credentials.enc"
    LOCK_FILE = "credentials.lock"

    def __init__(self, store_dir: Path | str) -> None:
        self.dir = ensure_private_dir(Path(store_dir))
        self._key_path = self.dir / self.KEY_FILE
        self._data_path = self.dir / self.DATA_FILE
        self._lock_path = self.dir / self.LOCK_FILE
        self._thread_lock = threading.Lock()
        self._aead: AESGCM | None = None

    def put(
        self,
        name: str,
        credential_type: str,
        value: str,
        target_host: str | None = None,
        username: str | None = None,
        storage_mode: str = "relay_only",
    ) -> Credential:
        if not name or not isinstance(name, str):
            raise CredentialStoreError("credential name is required")
        if credential_type not in CREDENTIAL_TYPES:
            raise CredentialStoreError(f"credential type must be one of {', '.join(CREDENTIAL_TYPES)}")
        if storage_mode not in STORAGE_MODES:
            raise CredentialStoreError(f"storage mode must be one of {', '.join(STORAGE_MODES)}")
        if not isinstance(value, str) or value == "":
            raise CredentialStoreError("credential value is empty")
        if target_host and credential_type in SSH_TYPES:
            try:
                parse_binding(target_host)
            except ValueError as exc:
                raise CredentialStoreError(str(exc)) from None
        new = Credential(name, credential_type, value, target_host or None, username or None, storage_mode)
        with self._locked() as entries:
            old = entries.get(name)
            if old is not None and _same(old, new):
                return old
            new.last_updated_at = int(time.time() * 1000)
            entries[name] = new
        return new

    def get(self, name: str) -> Credential | None:
        return self._read(values=True).get(name)

    def remove(self, name: str) -> bool:
        with self._locked() as entries:
            return entries.pop(name, None) is not None

    def all(self) -> list[Credential]:
        """Every credential with its metadata only (value ""); nothing is decrypted."""
        return sorted(self._read(values=False).values(), key=lambda c: c.name)

    def inventory(self) -> list[dict]:
        return [cred.metadata() for cred in self.all()]

    def for_ssh(self, host: str, port: int, username: str | None) -> list[Credential]:
        """SSH credentials (with values) bound to host:port and usable for the user, the most specific first.

        A credential is offered only to the target its target host names ("host" binds every port
        of that host, "host:port" one port); a credential bound to no host is offered to no target,
        so a command can never hand it to a server of its choosing.
        """
        wanted = _normal_host(host)
        ranked = []
        for cred in self.all():
            if cred.credential_type not in SSH_TYPES or not cred.target_host:
                continue
            try:
                bound_host, bound_port = parse_binding(cred.target_host)
            except ValueError:
                continue
            if bound_host != wanted or bound_port not in (None, port):
                continue
            if username and cred.username and cred.username != username:
                continue
            rank = (
                0 if bound_port is not None else 1,
                0 if cred.username else 1,
                0 if cred.credential_type == "ssh_key" else 1,
            )
            ranked.append((rank, cred.name))
        if not ranked:
            return []
        full = self._read(values=True)
        return [full[name] for _, name in sorted(ranked)]

    def _cipher(self) -> AESGCM:
        # Imported here so an agent that never needs a credential value never loads cryptography (~6 MB RSS).
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if self._aead is None:
            create_private(self._key_path)
            with open(self._key_path, "rb+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                key = fh.read()
                if not key:
                    key = AESGCM.generate_key(bit_length=256)
                    fh.write(key)
                    fh.flush()
                    os.fsync(fh.fileno())
            if len(key) != 32:
                raise CredentialStoreError(f"key file {self._key_path} is corrupt")
            self._aead = AESGCM(key)
        return self._aead

    # File layout: MAGIC, 4-byte header length, header JSON (metadata, readable without the key),
    # 12-byte nonce, AES-GCM ciphertext of {name: value}; the header is the associated data, so
    # metadata cannot be altered without the decryption failing.

    def _read(self, values: bool) -> dict[str, Credential]:
        try:
            blob = self._data_path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            if not blob.startswith(_MAGIC):
                raise ValueError
            (length,) = struct.unpack(">I", blob[len(_MAGIC) : len(_MAGIC) + 4])
            header_end = len(_MAGIC) + 4 + length
            metadata = json.loads(blob[len(_MAGIC) + 4 : header_end])
        except (ValueError, struct.error):
            raise CredentialStoreError(f"{self._data_path} is not a credential store") from None
        secrets: dict[str, str] = {}
        if values:
            nonce, sealed = blob[header_end : header_end + 12], blob[header_end + 12 :]
            try:
                secrets = json.loads(self._cipher().decrypt(nonce, sealed, blob[:header_end]))
            except CredentialStoreError:
                raise
            except Exception:
                raise CredentialStoreError(
                    f"cannot decrypt {self._data_path}: wrong key file or tampered store"
                ) from None
        return {item["name"]: Credential(value=secrets.get(item["name"], ""), **item) for item in metadata}

    def _save(self, entries: dict[str, Credential]) -> None:
        metadata = [{k: v for k, v in asdict(cred).items() if k != "value"} for cred in entries.values()]
        header = json.dumps(metadata).encode()
        prefix = _MAGIC + struct.pack(">I", len(header)) + header
        nonce = os.urandom(12)
        sealed = self._cipher().encrypt(nonce, json.dumps({c.name: c.value for c in entries.values()}).encode(), prefix)
        write_private(self._data_path, prefix + nonce + sealed)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Credential]]:
        # The CLI and a running agent may write at the same time: serialise read-modify-write across processes.
        create_private(self._lock_path)
        with self._thread_lock, open(self._lock_path, "rb+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._read(values=True)
            before = {name: asdict(cred) for name, cred in entries.items()}
            yield entries
            if {name: asdict(cred) for name, cred in entries.items()} != before:
                self._save(entries)


def _same(a: Credential, b: Credential) -> bool:
    return (a.credential_type, a.value, a.target_host, a.username, a.storage_mode) == (
        b.credential_type,
        b.value,
        b.target_host,
        b.username,
        b.storage_mode,
    )
