from django.contrib import admin

from commands.models import Command, CommandBatch


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    list_display = ["id", "machine_id", "command", "status", "exit_code", "claimed_by", "created_by", "created_at"]
    list_filter = ["status", "target_type"]
    search_fields = ["command", "machine_id"]
    readonly_fields = [
        "status", "attempt", "claimed_by", "claimed_at", "started_at", "completed_at", "output", "stderr",
        "exit_code", "error", "duration_ms", "output_truncated", "cancel_requested", "created_by", "created_at",
    ]
    exclude = ["result_digest"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(CommandBatch)
class CommandBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "max_concurrency", "max_errors", "created_by", "created_at"]
