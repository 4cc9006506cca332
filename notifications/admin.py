from __future__ import annotations

import json

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from assignments import access
from notifications import tasks
from notifications.forms import ChannelForm
from notifications.models import Channel, Delivery, Rule, email_addresses


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "destination", "secret_shown", "enabled", "updated_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "url", "email_to"]
    readonly_fields = ["secret_shown", "created_by", "created_at", "updated_at"]
    actions = ["send_test"]

    def get_fields(self, request: HttpRequest, obj: Channel | None = None) -> list[str]:
        return ["name", "kind", "url", "email_to", "secret", "secret_shown", "enabled", "created_by", "created_at",
                "updated_at"]

    def formfield_for_dbfield(self, db_field, request: HttpRequest, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"  # a URL typed without one; Django 6's default
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Channel, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="sends to")
    def destination(self, channel: Channel) -> str:
        if channel.url:
            return channel.host
        addresses = email_addresses(channel.email_to)
        return ", ".join(addresses[:3]) + (f" and {len(addresses) - 3} more" if len(addresses) > 3 else "")

    @admin.display(description="secret")
    def secret_shown(self, channel: Channel) -> str:
        return "set (never shown)" if channel.has_secret else "none"

    @admin.action(description="Send a test notification", permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            tasks.send_test(channel)
        self.message_user(request, f"Queued a test notification to {queryset.count()} channel(s); see "
                                   "Notification deliveries for how it went.")


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "event", "channel", "filters", "enabled", "created_at"]
    list_filter = ["event", "enabled", "channel"]
    list_select_related = ["channel", "relay"]
    search_fields = ["name", "selector", "template_name"]
    fields = ["name", "event", "threshold", "relay", "selector", "template_name", "channel", "enabled",
              "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "relay":
            kwargs["queryset"] = access.relays_for(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Rule, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="only")
    def filters(self, rule: Rule) -> str:
        parts = [f"relay {rule.relay}" if rule.relay_id else "", f"labels {rule.selector}" if rule.selector else "",
                 f"template {rule.template_name}" if rule.template_name else "",
                 f"{rule.threshold} in a row" if rule.threshold else ""]
        return "; ".join(part for part in parts if part) or "–"


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Each attempt, as it went; read-only."""

    list_display = ["created_at", "event_kind", "summary", "channel", "rule", "attempt", "status", "http_status",
                    "duration", "error"]
    list_filter = ["status", "event__kind", "channel", "rule"]
    list_select_related = ["event", "channel", "rule"]
    search_fields = ["error", "channel__name", "rule__name"]
    date_hierarchy = "created_at"
    fields = ["event_kind", "summary", "channel", "rule", "attempt", "status", "http_status", "error", "duration",
              "created_at", "payload"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a record of what was sent; pruned after NOTIFY_RETENTION_DAYS

    @admin.display(description="event", ordering="event__kind")
    def event_kind(self, delivery: Delivery) -> str:
        return delivery.event.get_kind_display()

    @admin.display(description="summary")
    def summary(self, delivery: Delivery) -> str:
        return delivery.event.payload.get("summary", "")

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, delivery: Delivery) -> str:
        return f"{delivery.duration_ms} ms"

    @admin.display(description="payload (as sent)")
    def payload(self, delivery: Delivery) -> str:
        return format_html('<pre class="rh-mono">{}</pre>', json.dumps(delivery.event.payload, indent=2,
                                                                       sort_keys=True))
