from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from assignments.models import RelayApiKey, RelayAssignment, RelayEvent, RelayStatus


class RelayStatusInline(admin.StackedInline):
    model = RelayStatus
    can_delete = False
    readonly_fields = ["capabilities", "metrics", "version", "hostname", "platform", "last_heartbeat_at",
                       "last_connection_event"]


@admin.register(RelayAssignment)
class RelayAssignmentAdmin(GuardedModelAdmin):
    list_display = ["name", "machine_id", "enabled", "online", "last_seen_at", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "machine_id"]
    readonly_fields = ["id", "api_key", "last_seen_at", "created_by", "created_at", "updated_at"]
    inlines = [RelayStatusInline]

    @admin.display(boolean=True)
    def online(self, relay: RelayAssignment) -> bool:
        return relay.is_online

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("status")


@admin.register(RelayApiKey)
class RelayApiKeyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "assignment", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["lookup", "created_at", "last_used_at", "revoked_at"]
    exclude = ["secret_hash"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(RelayEvent)
class RelayEventAdmin(admin.ModelAdmin):
    list_display = ["relay", "kind", "reason", "created_at"]
    list_filter = ["kind"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False
