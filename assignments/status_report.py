"""What a relay reports about itself in ``POST /relay/status``, and how it is recorded.

The route (``credentials.relay_views.StatusView``) adds the credential inventory
to the report and answers what is waiting for the relay.
"""

from __future__ import annotations

from datetime import datetime

from rest_framework import serializers

from assignments.models import Capability, MetricSample, RelayAssignment, RelayStatus
from relayhub.web.fields import StrictCharField, StrictFloatField

METRIC_KEYS = (
    "cpuPercent", "memoryPercent", "memoryUsedMb", "memoryTotalMb", "diskPercent",
    "diskUsedGb", "diskTotalGb", "loadAvg1m", "loadAvg5m", "loadAvg15m",
)


class MetricsField(serializers.DictField):
    child = StrictFloatField()

    def to_internal_value(self, data: object) -> dict:
        values = super().to_internal_value(data)
        # Unknown metric names are dropped: a newer relay may report more.
        return {key: values[key] for key in METRIC_KEYS if key in values}


class RelayReport(serializers.Serializer):
    relayId = serializers.JSONField(required=False)
    capabilities = serializers.ListField(child=serializers.ChoiceField(Capability.choices), allow_empty=True)
    metrics = MetricsField(required=False, allow_null=True)
    version = StrictCharField(required=False, allow_blank=True, max_length=100)
    hostname = StrictCharField(required=False, allow_blank=True, max_length=255)
    platform = StrictCharField(required=False, allow_blank=True, max_length=100)


def record(relay: RelayAssignment, data: dict, now: datetime) -> None:
    """Replace the relay's capabilities and what it said of itself; keep its metrics as a sample."""
    fields = {"capabilities": sorted(set(data["capabilities"]))}
    for name in ("version", "hostname", "platform"):
        if name in data:
            fields[name] = data[name]
    if data.get("metrics"):
        fields["metrics"] = data["metrics"]
        MetricSample.objects.create(relay=relay, metrics=data["metrics"], created_at=now)
    RelayStatus.objects.filter(pk=relay.pk).update(**fields)
