"""The audit trail in the admin: read-only, filtered, exported as JSON lines. Needs ``view_auditentry``."""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path
from django.utils.html import format_html

from audit import export
from audit.models import AuditEntry
from relayhub.web import times


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at_seconds", "actor_name", "action_shown", "object_shown", "source", "address"]
    list_filter = ["action", "source", "object_type", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor_name", "object_repr", "object_id"]
    date_hierarchy = "at"
    list_per_page = 50
    show_full_result_count = False  # a count(*) of a long trail on every page is slow
    fields = ["at", "action", "actor_name", "actor_id", "source", "address", "object_type", "object_id",
              "object_repr", "detail_shown"]
    readonly_fields = fields

    def get_urls(self):
        export_view = self.admin_site.admin_view(self.export_view)
        return [path("export/", export_view, name="audit_auditentry_export"), *super().get_urls()]

    def export_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The entries the changelist's filters and search pick, as JSON lines."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        return export.response(changelist.get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="when", ordering="at")
    def at_seconds(self, entry: AuditEntry) -> str:
        return times.moment(entry.at)

    @admin.display(description="action", ordering="action")
    def action_shown(self, entry: AuditEntry) -> str:
        return entry.get_action_display()

    @admin.display(description="object")
    def object_shown(self, entry: AuditEntry) -> str:
        if not entry.object_type:
            return ""
        return f"{entry.object_type} {entry.object_repr or entry.object_id}"

    @admin.display(description="detail")
    def detail_shown(self, entry: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(entry.detail, indent=2, sort_keys=True, default=str))
