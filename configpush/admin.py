from django.contrib import admin

from configpush.models import ConfigPush


@admin.register(ConfigPush)
class ConfigPushAdmin(admin.ModelAdmin):
    list_display = ["id", "relay", "push_type", "status", "tries", "created_at", "acked_at"]
    list_filter = ["push_type", "status"]
    readonly_fields = ["status", "tries", "sent_at", "acked_at", "error_message", "created_by"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
