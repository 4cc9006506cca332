"""The hub's files under ``VAR_DIR`` are its user's alone: directories 0700, files 0600.

The SQLite database (with its ``-wal`` and ``-shm``) holds every hash, session
digest and ciphertext, kombu's filesystem broker holds task messages, and
``bootstrap_demo`` writes the admin password there. Modes are tightened rather
than set by a process-wide umask, which would also reach files meant to be
shared (collected static files).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

SQLITE_SUFFIXES = ("", "-wal", "-shm")
_private_databases: set[str] = set()


def tighten(path: Path, mode: int) -> None:
    """Drop group and other bits from a file or directory this process owns."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(mode)


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    tighten(path, 0o700)
    return path


def make_sqlite_files_private(sender, connection, **kwargs) -> None:  # noqa: ANN001 - signal receiver
    """On each new SQLite connection, until the database, -wal and -shm have all been seen private."""
    if connection.vendor != "sqlite":
        return
    name = str(connection.settings_dict["NAME"])
    if name in _private_databases or connection.is_in_memory_db():
        return
    files = [Path(name + suffix) for suffix in SQLITE_SUFFIXES]
    for path in files:
        tighten(path, 0o600)
    if all(path.exists() for path in files):
        _private_databases.add(name)

