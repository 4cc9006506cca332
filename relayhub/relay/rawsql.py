"""Hand-written SQL for the relay hot path, the same text on PostgreSQL and SQLite.

Django compiles each ORM statement anew: 0.4-1.5 ms of CPU here for the key
lookup, the claim and the status moves, against about 0.06 ms for running the
same statement through a cursor. The routes every relay request passes through
write their few statements once, with names quoted from the models' ``_meta``,
and turn rows back into model instances with the ORM's own converters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connections, models

Converter = Callable[[Any, Any, Any], Any]


def quote(name: str, using: str = "default") -> str:
    return connections[using].ops.quote_name(name)


def table(model: type[models.Model], using: str = "default") -> str:
    return quote(model._meta.db_table, using)


def column(model: type[models.Model], name: str, using: str = "default") -> str:
    return quote(model._meta.get_field(name).column, using)


def columns(model: type[models.Model], names: Iterable[str], alias: str = "", using: str = "default") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + column(model, name, using) for name in names)


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def param(model: type[models.Model], name: str, value: Any, using: str = "default") -> Any:
    """A value for a field as the ORM passes it (a UUID as hex text and a datetime as naive UTC text on SQLite)."""
    return model._meta.get_field(name).get_db_prep_value(value, connections[using])


def plus_milliseconds(moment_sql: str, milliseconds_sql: str, using: str = "default") -> str:
    """SQL for a moment plus a number of milliseconds (a claim's deadline from the row's own timeout)."""
    if connections[using].vendor == "postgresql":
        return f"({moment_sql} + {milliseconds_sql} * INTERVAL '1 millisecond')"
    # The function Django's SQLite backend registers for its own date arithmetic (durations in µs).
    return f"django_format_dtdelta('+', {moment_sql}, {milliseconds_sql} * 1000)"


def execute(sql: str, params: Sequence[Any], using: str = "default") -> list[tuple]:
    """The rows of a statement that returns rows (a SELECT, or a write with RETURNING)."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        # Not through ``cursor.description``: psycopg builds an object per column on each look at it.
        return cursor.fetchall()


class RowReader:
    """Model instances from raw rows of ``names``, converted as the ORM converts them (e.g. SQLite's UUIDs).

    Rows must hold the columns in ``self.names`` order: the model's field order, which ``from_db`` expects.
    """

    def __init__(self, model: type[models.Model], names: Sequence[str]) -> None:
        self.model = model
        wanted = {model._meta.get_field(name) for name in names}
        self.fields = [field for field in model._meta.concrete_fields if field in wanted]
        self.names = [field.name for field in self.fields]
        self.attnames = [field.attname for field in self.fields]
        self._by_database: dict[str, list[tuple[Any, list[Converter]]]] = {}

    def _converters(self, using: str) -> list[tuple[Any, list[Converter]]]:
        known = self._by_database.get(using)
        if known is None:
            connection = connections[using]
            known = []
            for field in self.fields:
                col = field.get_col(self.model._meta.db_table)
                known.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
            self._by_database[using] = known
        return known

    def values(self, row: Sequence[Any], using: str = "default") -> list[Any]:
        connection = connections[using]
        converted = []
        for value, (col, converters) in zip(row, self._converters(using)):
            for converter in converters:
                value = converter(value, col, connection)
            converted.append(value)
        return converted

    def build(self, row: Sequence[Any], using: str = "default") -> models.Model:
        return self.model.from_db(using, self.attnames, self.values(row, using))
