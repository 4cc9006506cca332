"""The hub's var/ is 0700 and its secrets 0600: the SQLite database and its -wal/-shm, the admin password."""

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from relayhub.private_files import tighten

ROOT = Path(__file__).resolve().parent.parent
PRIVATE_FILES = ["relayhub.sqlite3", "relayhub.sqlite3-wal", "relayhub.sqlite3-shm", "admin-password",
                 "admin-login.txt", "demo-relay.key", "demo-relay.secret"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def manage(var: Path, *args: str) -> str:
    env = {name: value for name, value in os.environ.items()
           if name not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env["RELAYHUB_VAR_DIR"] = str(var)
    # A shell's usual umask: files would be world-readable without the hub's own care.
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300, preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def reader(var: Path) -> sqlite3.Connection:
    """An open connection, as a running hub holds: SQLite removes -wal and -shm when the last one closes."""
    connection = sqlite3.connect(var / "relayhub.sqlite3")
    connection.execute("SELECT count(*) FROM django_migrations").fetchone()
    return connection


def test_make_run_leaves_var_private(tmp_path):
    var = tmp_path / "var"
    manage(var, "migrate", "--noinput")
    manage(var, "bootstrap_demo")
    held = reader(var)
    assert mode(var) == 0o700
    assert mode(var / "celery-queue") == 0o700
    for name in PRIVATE_FILES:
        assert mode(var / name) == 0o600, name
    held.close()


def test_loose_modes_from_before_are_tightened(tmp_path):
    var = tmp_path / "var"
    manage(var, "migrate", "--noinput")
    manage(var, "bootstrap_demo")
    held = reader(var)
    var.chmod(0o755)
    for name in PRIVATE_FILES:
        (var / name).chmod(0o644)
    manage(var, "bootstrap_demo")
    assert mode(var) == 0o700
    for name in PRIVATE_FILES:
        assert mode(var / name) == 0o600, name
    held.close()


def test_the_test_database_is_private_too(db):
    from django.db import connection

    name = Path(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        pytest.skip("an SQLite file database only")
    assert mode(name) == 0o600 and mode(name.parent) == 0o700


def test_tighten_never_widens_and_leaves_missing_files_alone(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    path.chmod(0o400)
    tighten(path, 0o600)
    assert mode(path) == 0o400
    tighten(tmp_path / "missing", 0o600)
