from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from assignments import access
from assignments.admin import RelayScopedAdmin, may_see_relays
from assignments.admin_views import relay_page_panel
from configpush.forms import ConfigPushForm
from configpush.models import ConfigPush, PushType

DETAIL_FIELDS = ["relay", "push_type", "payload_shown", "status", "tries", "error_message", "created_by",
                 "created_at", "sent_at", "acked_at"]


@admin.register(ConfigPush)
class ConfigPushAdmin(RelayScopedAdmin):
    form = ConfigPushForm
    list_display = ["id", "relay", "push_type", "status", "tries", "created_by", "created_at", "acked_at"]
    list_filter = ["push_type", "status"]
    list_select_related = ["relay", "created_by"]
    search_fields = ["relay__name", "relay__machine_id"]

    def get_fields(self, request: HttpRequest, obj: ConfigPush | None = None) -> list[str]:
        return DETAIL_FIELDS if obj is not None else ["relay", "push_type", "payload"]

    def get_readonly_fields(self, request: HttpRequest, obj: ConfigPush | None = None) -> list[str]:
        return DETAIL_FIELDS if obj is not None else []

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("push_type", PushType.ALLOWED_COMMANDS)
        # An object to fill in, not "null"; the help text shows an example for each type.
        initial.setdefault("payload", {})
        return initial

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "relay":
            kwargs["queryset"] = access.relays_for(request.user, access.CONFIGURE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_see_relays(request.user)

    def has_view_permission(self, request: HttpRequest, obj: ConfigPush | None = None) -> bool:
        return may_see_relays(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access.configures_any(request.user)

    # A push is delivered as it was queued; a new push replaces it.
    def has_change_permission(self, request: HttpRequest, obj: ConfigPush | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ConfigPush, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="payload")
    def payload_shown(self, push: ConfigPush):
        payload = dict(push.payload)
        if "encryptedValue" in payload:
            payload["encryptedValue"] = "(encrypted for this relay)"
        return format_html("<pre>{}</pre>", json.dumps(payload, indent=2))


@relay_page_panel
def config_pushes(request: HttpRequest, relay) -> dict:
    return {"config_pushes": relay.config_pushes.select_related("created_by").order_by("-created_at")[:15]}
