"""Filters the operator API's lists share."""

from __future__ import annotations

import datetime

import django_filters
from django.core.exceptions import ValidationError


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 moment, turned to UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows."""

    def to_python(self, value):  # noqa: ANN001, ANN201 - Django's signature
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(datetime.timezone.utc)
        except OverflowError:
            raise ValidationError("this moment is out of range") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
