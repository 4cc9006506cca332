"""A relay's credential inventory report: metadata only, replacing the old set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rest_framework import serializers

from credentials.models import CredentialInventoryItem, CredentialType, StorageMode
from relayhub.web.fields import StrictCharField, StrictIntegerField

FIELDS = {"credentialName", "credentialType", "targetHost", "storageMode", "lastUpdatedAt"}
# The last millisecond a datetime holds.
LAST_MS = (datetime.max.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


class InventoryItemSerializer(serializers.Serializer):
    credentialName = StrictCharField(max_length=200)
    credentialType = serializers.ChoiceField(CredentialType.choices)
    targetHost = StrictCharField(required=False, allow_blank=True, max_length=255)
    storageMode = serializers.ChoiceField(StorageMode.choices)
    lastUpdatedAt = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=LAST_MS)

    def to_internal_value(self, data: Any) -> dict:
        # A report may never carry a value, password or key: only the five fields.
        if isinstance(data, dict) and (extra := sorted(set(data) - FIELDS)):
            raise serializers.ValidationError(
                {"fields": f"only metadata may be reported; not allowed: {', '.join(extra)}"}
            )
        return super().to_internal_value(data)


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


def replace(relay, items: list[dict], now: datetime) -> None:
    names = [item["credentialName"] for item in items]
    CredentialInventoryItem.objects.filter(relay=relay).exclude(credential_name__in=names).delete()
    for item in items:
        CredentialInventoryItem.objects.update_or_create(
            relay=relay,
            credential_name=item["credentialName"],
            defaults={
                "credential_type": item["credentialType"],
                "target_host": item.get("targetHost", ""),
                "storage_mode": item["storageMode"],
                "last_updated_at": _from_ms(item.get("lastUpdatedAt")),
                "reported_at": now,
            },
        )
