"""System checks for what the command queue needs of its database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks

# UPDATE ... FROM arrived in SQLite 3.33 and RETURNING in 3.35; the relay hot path uses both (commands.queue_sql).
SQLITE_NEEDED = (3, 35, 0)


def sqlite_problems(engines: Iterable[str], version: tuple[int, ...]) -> list[checks.CheckMessage]:
    if not any("sqlite3" in engine for engine in engines) or version >= SQLITE_NEEDED:
        return []
    return [checks.Error(
        f"SQLite {'.'.join(map(str, version))} is too old: relayhub needs "
        f"{'.'.join(map(str, SQLITE_NEEDED))} or newer (UPDATE ... FROM ... RETURNING).",
        hint="Use a Python built against a newer SQLite, or PostgreSQL (DATABASE_URL).",
        id="commands.E001",
    )]


@checks.register(checks.Tags.compatibility)
def sqlite_is_new_enough(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return sqlite_problems((db["ENGINE"] for db in settings.DATABASES.values()), sqlite3.sqlite_version_info)
