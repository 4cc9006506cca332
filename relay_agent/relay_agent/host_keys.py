"""Which host keys an SSH target may present: keys pinned by the hub, held to the local known_hosts files.

A known_hosts entry is the word of whoever runs this machine; a pin only comes from the hub. So a
pin never overrides an entry that disagrees: when known_hosts names the host, every pin must be
among its keys, or no key is accepted at all.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import paramiko


class HostKeyError(Exception):
    """The target's host key cannot be trusted; nothing may be sent to it."""


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {sha256_fingerprint(key)}"


def sha256_fingerprint(key: paramiko.PKey) -> str:
    """As `ssh-keygen -l` prints it: "SHA256:" and the unpadded base64 digest."""
    import hashlib  # on use: hashlib loads OpenSSL's libcrypto, megabytes an idle agent need not hold

    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def parse_public_key(line: str) -> paramiko.PKey:
    key = _read_key(*line.split()[:2]) if len(line.split()) >= 2 else None
    if key is None:
        raise HostKeyError(f"unreadable pinned host key {line.split()[0] if line.split() else ''!r}")
    return key


def _read_key(key_type: str, data: str) -> paramiko.PKey | None:
    from paramiko import PKey, SSHException, UnknownKeyType

    try:
        return PKey.from_type_string(key_type, base64.b64decode(data, validate=True))
    except (binascii.Error, UnknownKeyType, SSHException, ValueError, TypeError, IndexError):
        return None


@dataclass(frozen=True)
class _Entry:
    patterns: tuple[str, ...]
    key_type: str
    key: paramiko.PKey | None  # None: a key type or key data this agent cannot read
    revoked: bool

    def names(self, host_name: str) -> bool:
        """OpenSSH's rules: plain names, hashed names (|1|salt|hash), wildcards, and !negations."""
        matched = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            pattern = pattern[1:] if negated else pattern
            if pattern.startswith("|1|"):
                hit = _hashed_name_matches(host_name, pattern)
            else:
                hit = _wildcard_match(host_name, pattern.lower())
            if hit and negated:
                return False
            matched = matched or hit
        return matched

    def describe(self) -> str:
        return fingerprint(self.key) if self.key is not None else f"unreadable {self.key_type} key"


def _wildcard_match(host_name: str, pattern: str) -> bool:
    # Only * and ? are wildcards in known_hosts; "[host]:port" brackets are literal.
    if "*" not in pattern and "?" not in pattern:
        return host_name == pattern
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, host_name, re.DOTALL) is not None


def _hashed_name_matches(host_name: str, hashed: str) -> bool:
    import hashlib
    import hmac

    try:
        _, _, salt, digest = hashed.split("|")
        expected = hmac.new(base64.b64decode(salt), host_name.encode(), hashlib.sha1).digest()
        return hmac.compare_digest(expected, base64.b64decode(digest))
    except (ValueError, binascii.Error):
        return False


def _parse(text: str) -> list[_Entry]:
    entries = []
    for raw in text.splitlines():
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if marker not in (None, "@revoked") or len(fields) < 3:
            continue  # @cert-authority: this agent does not verify host certificates
        entries.append(_Entry(tuple(fields[0].split(",")), fields[1], _read_key(fields[1], fields[2]),
                              revoked=marker == "@revoked"))
    return entries


@dataclass
class KnownHostKeys:
    """What the known_hosts files say about one host name."""

    entries: list[_Entry] = field(default_factory=list)

    @property
    def named(self) -> bool:
        return any(not e.revoked for e in self.entries)

    @property
    def keys(self) -> list[paramiko.PKey]:
        revoked = self.revoked
        return [e.key for e in self.entries if not e.revoked and e.key is not None and e.key.asbytes() not in revoked]

    @property
    def revoked(self) -> set[bytes]:
        return {e.key.asbytes() for e in self.entries if e.revoked and e.key is not None}

    def describe(self) -> str:
        return ", ".join(e.describe() for e in self.entries if not e.revoked)


class KnownHostsFiles:
    """known_hosts files, each parsed again only when it changes (a fan-out looks up many hosts at once)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._cache: dict[Path, tuple[tuple[int, int, int], list[_Entry]]] = {}
        self._lock = threading.Lock()

    def lookup(self, host: str, port: int) -> KnownHostKeys:
        name = (host if port == 22 else f"[{host}]:{port}").lower()
        found = KnownHostKeys()
        for path in self.paths:
            found.entries += [entry for entry in self._entries(path) if entry.names(name)]
        return found

    def _entries(self, path: Path) -> list[_Entry]:
        try:
            stat = path.stat()
        except OSError:
            return []
        version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            entries = _parse(path.read_text(errors="replace"))
        except OSError:
            return []
        with self._lock:
            self._cache[path] = (version, entries)
        return entries


def accepted_keys(where: str, pins: list[paramiko.PKey], known: KnownHostKeys) -> tuple[list[paramiko.PKey], str]:
    """The keys the target may present, and where they come from; HostKeyError when pins and known_hosts disagree."""
    revoked = known.revoked
    trusted = {key.asbytes() for key in known.keys}
    disagreeing = [key for key in pins if key.asbytes() in revoked or (known.named and key.asbytes() not in trusted)]
    if disagreeing:
        pinned = ", ".join(fingerprint(k) + (" (revoked there)" if k.asbytes() in revoked else "") for k in disagreeing)
        raise HostKeyError(
            f"pushed host key for {where} disagrees with known_hosts: pinned {pinned} is not among "
            f"the known_hosts keys ({known.describe() or 'none'}); refusing to connect"
        )
    if pins:
        return pins, "pinned"
    return known.keys, "known_hosts"
