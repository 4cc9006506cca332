"""System checks: what the hub needs of its surroundings, said at start-up rather than on the first relay request."""

from django.core import checks

from commands.checks import sqlite_problems

SQLITE, POSTGRES = "django.db.backends.sqlite3", "django.db.backends.postgresql"


def test_an_sqlite_without_returning_is_an_error():
    [error] = sqlite_problems([SQLITE], (3, 34, 1))
    assert error.id == "commands.E001" and "3.34.1" in error.msg and "3.35.0" in error.msg


def test_a_new_enough_sqlite_or_postgres_passes():
    assert sqlite_problems([SQLITE], (3, 35, 0)) == []
    assert sqlite_problems([POSTGRES], (3, 20, 0)) == []


def test_the_check_is_registered_and_passes_here():
    assert not [message for message in checks.run_checks() if message.id == "commands.E001"]
    assert any(check.__name__ == "sqlite_is_new_enough" for check in checks.registry.registry.get_checks())
