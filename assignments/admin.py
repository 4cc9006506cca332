from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from guardian.admin import ReinforcedGuardedModelAdminMixin

from assignments import access, admin_views
from assignments.forms import RelayForm
from assignments.labels import format_labels
from assignments.models import Capability, RelayApiKey, RelayAssignment, RelayEvent, online_since


def may_see_relays(user) -> bool:
    return user.has_perm(access.VIEW) or access.relays_for(user).exists()


class RelayScopedAdmin(admin.ModelAdmin):
    """Rows that belong to a relay are listed only when the user may see that relay."""

    relay_path = "relay"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        rows = super().get_queryset(request)
        if request.user.has_perm(access.VIEW):
            return rows
        return rows.filter(**{f"{self.relay_path}__in": access.relays_for(request.user)})


class LivenessFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "liveness"

    def lookups(self, request, model_admin):
        return [("online", "online"), ("offline", "offline"), ("disabled", "disabled")]

    def queryset(self, request, queryset):
        alive = Q(status__last_heartbeat_at__gt=online_since())
        if self.value() == "online":
            return queryset.filter(alive, enabled=True)
        if self.value() == "offline":
            return queryset.filter(enabled=True).exclude(alive)
        if self.value() == "disabled":
            return queryset.filter(enabled=False)
        return queryset


class CapabilityFilter(admin.SimpleListFilter):
    title = "capability"
    parameter_name = "capability"

    def lookups(self, request, model_admin):
        return Capability.choices

    def queryset(self, request, queryset):
        if self.value() not in Capability.values:
            return queryset
        # JSON containment is not portable to SQLite; relays are few, so filter here.
        ids = [pk for pk, caps in queryset.values_list("pk", "status__capabilities") if self.value() in (caps or [])]
        return queryset.filter(pk__in=ids)


RESOURCES = [("cpuPercent", "CPU"), ("memoryPercent", "mem"), ("diskPercent", "disk")]


def meter(value: object, label: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    percent = max(0.0, min(100.0, float(value)))
    level = "crit" if percent >= 90 else "warn" if percent >= 75 else "ok"
    return format_html('<span class="rh-meter rh-{}" title="{} {}%"><span style="width:{}%"></span></span> {}%',
                       level, label, f"{percent:.0f}", f"{percent:.0f}", f"{percent:.0f}")


@admin.register(RelayAssignment)
class RelayAssignmentAdmin(ReinforcedGuardedModelAdminMixin, admin.ModelAdmin):
    list_display = ["name", "machine_id", "state", "labels_shown", "version", "capabilities", "resources",
                    "last_heartbeat"]
    list_filter = [LivenessFilter, "enabled", "requires_approval", CapabilityFilter]
    search_fields = ["name", "machine_id", "status__hostname", "status__version"]
    form = RelayForm
    fields = ["name", "machine_id", "enabled", "labels", "requires_approval", "agent_version_pin", "id", "key", "last_seen_at", "created_by", "created_at", "updated_at"]
    readonly_fields = ["id", "key", "last_seen_at", "created_by", "created_at", "updated_at"]
    actions = ["enable_relays", "disable_relays"]
    change_form_template = "admin/assignments/relayassignment/change_form.html"

    class Media:
        css = {"all": ["relayhub/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[RelayAssignment]:
        relays = super().get_queryset(request).select_related("status", "api_key")
        if request.user.has_perm(access.VIEW):
            return relays
        return relays.filter(pk__in=access.relays_for(request.user).values("pk"))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_see_relays(request.user)

    def has_view_permission(self, request: HttpRequest, obj: RelayAssignment | None = None) -> bool:
        if obj is None:
            return may_see_relays(request.user)
        return access.relays_for(request.user).filter(pk=obj.pk).exists()

    def has_change_permission(self, request: HttpRequest, obj: RelayAssignment | None = None) -> bool:
        perm = "assignments.change_relayassignment"
        return request.user.has_perm(perm) or (obj is not None and request.user.has_perm(perm, obj))

    def get_readonly_fields(self, request: HttpRequest, obj: RelayAssignment | None = None) -> list[str]:
        # Whether the relay's commands need approval changes what it allows: configure_relay, not change.
        if obj is not None and access.configures(request.user, obj):
            return self.readonly_fields
        return [*self.readonly_fields, "requires_approval", "agent_version_pin"]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/enable/",
                 view(lambda r, object_id: admin_views.set_enabled(self, r, object_id, True)),
                 name="assignments_relayassignment_enable"),
            path("<path:object_id>/disable/",
                 view(lambda r, object_id: admin_views.set_enabled(self, r, object_id, False)),
                 name="assignments_relayassignment_disable"),
            path("<path:object_id>/require-approval/",
                 view(lambda r, object_id: admin_views.set_requires_approval(self, r, object_id, True)),
                 name="assignments_relayassignment_require_approval"),
            path("<path:object_id>/approval-optional/",
                 view(lambda r, object_id: admin_views.set_requires_approval(self, r, object_id, False)),
                 name="assignments_relayassignment_approval_optional"),
            path("<path:object_id>/revoke-key/",
                 view(lambda r, object_id: admin_views.key_action(self, r, object_id, "revoke-key")),
                 name="assignments_relayassignment_revoke_key"),
            path("<path:object_id>/issue-key/",
                 view(lambda r, object_id: admin_views.key_action(self, r, object_id, "issue-key")),
                 name="assignments_relayassignment_issue_key"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)
        return admin_views.issue_relay(self, request)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        relay = self.get_object(request, unquote(object_id))
        if relay is not None:
            extra_context = {**admin_views.relay_panels(request, relay), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="labels")
    def labels_shown(self, relay: RelayAssignment) -> str:
        return format_labels(relay.labels or {}) or "–"

    @admin.display(description="status")
    def state(self, relay: RelayAssignment) -> str:
        state = admin_views.relay_state(relay)
        return format_html('<span class="rh-badge rh-{}">{}</span>', state, state.replace("-", " "))

    @admin.display(description="version")
    def version(self, relay: RelayAssignment) -> str:
        status = getattr(relay, "status", None)
        return status.version if status and status.version else "–"

    @admin.display(description="capabilities")
    def capabilities(self, relay: RelayAssignment) -> str:
        status = getattr(relay, "status", None)
        return ", ".join(status.capabilities) if status and status.capabilities else "–"

    @admin.display(description="CPU / memory / disk")
    def resources(self, relay: RelayAssignment) -> str:
        status = getattr(relay, "status", None)
        metrics = (status.metrics or {}) if status else {}
        return format_html_join("", '<div class="rh-resources"><b>{}</b> {}</div>', [
            (label, meter(metrics.get(key), label)) for key, label in RESOURCES])

    @admin.display(description="last heartbeat", ordering="status__last_heartbeat_at")
    def last_heartbeat(self, relay: RelayAssignment) -> str:
        status = getattr(relay, "status", None)
        if not status or not status.last_heartbeat_at:
            return "never"
        return f"{timesince(status.last_heartbeat_at)} ago"

    @admin.display(description="API key")
    def key(self, relay: RelayAssignment) -> str:
        if relay.api_key is None:
            return "none"
        if relay.api_key.is_revoked:
            return f"{relay.api_key} (revoked {relay.api_key.revoked_at:%Y-%m-%d %H:%M})"
        return str(relay.api_key)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[RelayAssignment], enabled: bool) -> None:
        changed = sum(admin_views.apply_enabled(self, request, relay, enabled) for relay in queryset)
        self.message_user(request, f"{changed} relay(s) {'enabled' if enabled else 'disabled'}.")

    @admin.action(description="Enable the selected relays", permissions=["change"])
    def enable_relays(self, request: HttpRequest, queryset: QuerySet[RelayAssignment]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected relays", permissions=["change"])
    def disable_relays(self, request: HttpRequest, queryset: QuerySet[RelayAssignment]) -> None:
        self._set_enabled(request, queryset, False)


@admin.register(RelayApiKey)
class RelayApiKeyAdmin(RelayScopedAdmin):
    relay_path = "assignment"
    list_display = ["__str__", "assignment", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["lookup", "created_at", "last_used_at", "revoked_at"]
    exclude = ["secret_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(RelayEvent)
class RelayEventAdmin(RelayScopedAdmin):
    list_display = ["relay", "kind", "reason", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["relay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
