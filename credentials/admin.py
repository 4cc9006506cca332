from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from assignments import access
from assignments.admin import RelayScopedAdmin, may_see_relays
from assignments.admin_views import relay_page_panel
from credentials import assignment
from credentials.forms import SharedCredentialForm
from credentials.models import CredentialInventoryItem, SharedCredential
from credentials.pushes import queue_credential_pushes

# Saving pushes the credential again when what its relays receive, or which relays hold it, changed.
PUSHED_FIELDS = {*assignment.PUSHED_FIELDS, "value", "assigned_relays"}


@admin.register(SharedCredential)
class SharedCredentialAdmin(admin.ModelAdmin):
    form = SharedCredentialForm
    list_display = ["name", "credential_type", "target_host", "relay_count", "key_id", "updated_at"]
    list_filter = ["credential_type"]
    search_fields = ["name", "target_host"]
    filter_horizontal = ["assigned_relays"]
    readonly_fields = ["key_id", "created_by", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).prefetch_related("assigned_relays")

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "assigned_relays":
            kwargs["queryset"] = access.relays_for(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: SharedCredential | None = None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.user = request.user
        return form

    def save_model(self, request: HttpRequest, obj: SharedCredential, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if PUSHED_FIELDS & set(form.changed_data):
            pushes = queue_credential_pushes(form.instance, created_by=request.user,
                                             replaces=form.initial.get("name", ""))
            if pushes:
                self.message_user(request, f"Queued the credential for {len(pushes)} relay(s).")

    @admin.display(description="relays")
    def relay_count(self, credential: SharedCredential) -> int:
        return len(credential.assigned_relays.all())


@admin.register(CredentialInventoryItem)
class CredentialInventoryItemAdmin(RelayScopedAdmin):
    list_display = ["credential_name", "relay", "credential_type", "target_host", "storage_mode", "reported_at"]
    list_filter = ["credential_type", "storage_mode"]
    list_select_related = ["relay"]
    search_fields = ["credential_name", "target_host", "relay__name", "relay__machine_id"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_see_relays(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return may_see_relays(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@relay_page_panel
def inventory(request: HttpRequest, relay) -> dict:
    return {"inventory": relay.inventory.all()}
