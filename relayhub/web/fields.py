"""Serializer fields that refuse type coercion (``1`` is not the string ``"1"``), and the wire's ids and times."""

from datetime import datetime
from typing import Any

from rest_framework import serializers


MAX_ID = 2**63 - 1


def wire_id(value: str | None) -> int | None:
    """A row id sent as a string: ASCII digits within a bigint, or None (``"²".isdigit()`` is true)."""
    if not value or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if number <= MAX_ID else None


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


# The ranges of the columns wire integers are stored in (Postgres integer and bigint): a value beyond
# them is refused as bad input rather than failing in the database.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MAX = 2**63 - 1


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


def epoch_ms(value: datetime | None) -> int | None:
    """A time as the wire carries it: milliseconds since the epoch."""
    return None if value is None else int(value.timestamp() * 1000)
