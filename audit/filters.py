"""The filters the admin's export, the REST list and its export share."""

from __future__ import annotations

import django_filters

from audit.models import Action, AuditEntry, Source
from relayhub.web.filters import UtcIsoDateTimeFilter


class AuditFilter(django_filters.FilterSet):
    action = django_filters.MultipleChoiceFilter(choices=Action.choices)
    source = django_filters.ChoiceFilter(choices=Source.choices)
    actor = django_filters.CharFilter(field_name="actor_name", help_text="the username (exact)")
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = ["action", "source", "actor", "object_type", "object_id", "since", "until"]
