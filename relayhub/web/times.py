"""How pages write a moment: with seconds and the zone."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

NONE = "–"


def moment(value: datetime | None) -> str:
    """2026-12-02 19:48:03 UTC, in the current time zone."""
    if value is None:
        return NONE
    local = timezone.localtime(value)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"
