from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from assignments import access
from assignments.admin import may_see_relays
from assignments.admin_views import relay_page_panel
from commands import admin_views, batches, display, run_options, streams, visibility
from commands import agent_update_admin  # noqa: F401 - adds "Update these relays' agent" to the relay list
from commands import approval_admin  # noqa: F401 - registers the Approvals admin
from commands.models import Command, CommandBatch


def may_run_somewhere(user) -> bool:
    return user.has_perm(access.RUN) or access.relays_for(user, access.RUN).exists()


def status_badge(status: str):
    return format_html('<span class="rh-badge rh-{}">{}</span>', status, status)



class MachineFilter(admin.SimpleListFilter):
    title = "machine"
    parameter_name = "machine"

    def lookups(self, request, model_admin):
        machines = access.relays_for(request.user).order_by("machine_id").values_list("machine_id", flat=True)
        return [(machine, machine) for machine in dict.fromkeys(machines)]

    def queryset(self, request, queryset):
        return queryset.filter(machine_id=self.value()) if self.value() else queryset


class RelayFilter(admin.SimpleListFilter):
    title = "relay"
    parameter_name = "relay"

    def lookups(self, request, model_admin):
        return [(str(relay.pk), str(relay)) for relay in access.relays_for(request.user)]

    def queryset(self, request, queryset):
        if self.value() in {value for value, _ in self.lookup_choices}:
            return queryset.filter(claimed_by=self.value())
        return queryset


class CreatorFilter(admin.SimpleListFilter):
    title = "creator"
    parameter_name = "creator"

    def lookups(self, request, model_admin):
        creators = get_user_model().objects.filter(pk__in=model_admin.get_queryset(request).values("created_by"))
        return [(user.get_username(), user.get_username()) for user in creators.order_by("username")]

    def queryset(self, request, queryset):
        return queryset.filter(created_by__username=self.value()) if self.value() else queryset


class CreatedFilter(admin.SimpleListFilter):
    title = "created"
    parameter_name = "created"
    WINDOWS = {"1h": ("last hour", timedelta(hours=1)), "24h": ("last 24 hours", timedelta(hours=24)),
               "7d": ("last 7 days", timedelta(days=7)), "30d": ("last 30 days", timedelta(days=30))}

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request, queryset):
        if self.value() in self.WINDOWS:
            return queryset.filter(created_at__gte=timezone.now() - self.WINDOWS[self.value()][1])
        return queryset


@admin.register(Command)
class CommandAdmin(admin.ModelAdmin):
    # The narrow facts first, so that who queued it and when stay in view beside the filter sidebar.
    list_display = ["id", "short_command", "state", "machine_id", "target", "created_by", "queued_at", "duration",
                    "exit_code", "claimed_by"]
    list_display_links = ["id", "short_command"]
    list_filter = ["status", MachineFilter, RelayFilter, CreatorFilter, CreatedFilter, "target_type"]
    list_select_related = ["claimed_by", "created_by"]
    search_fields = ["command", "machine_id", "target_host", "created_by__username"]
    date_hierarchy = "created_at"
    actions = ["cancel_commands", "rerun_commands", "duplicate_command"]
    fieldsets = [
        (None, {"fields": ["machine_id", "batch"]}),
        ("Target", {"fields": ["target_type", "target_name", "target_host", "target_port", "target_username"]}),
        # Shown through display.facts, in [data-live] elements that command.js refreshes as the command moves.
        ("Run", {"fields": [f"live_{key}" for key in ["timeout", "priority", "attempt", "claimed_by", "claimed_at",
                                                      "started_at", "completed_at", "deadline_at", "error",
                                                      "output_truncated", "cancel_requested"]]}),
        ("Audit", {"fields": ["created_by", "live_queued_at", "live_updated_at"]}),
    ]
    change_form_template = "admin/commands/command/change_form.html"
    change_list_template = "admin/commands/command/change_list.html"
    RUN_OPTIONS_FIELDSET = ("How it runs", {"fields": ["working_directory", "environment_shown", "run_as",
                                                       "interpreter", "script_shown"]})

    PACKAGES_FIELDSET = ("Packages", {"fields": ["package_action", "packages_shown", "package_outcome"]})

    def get_fieldsets(self, request: HttpRequest, obj: Command | None = None) -> list:
        if obj is not None and obj.is_package_command:
            return [*self.fieldsets[:2], self.PACKAGES_FIELDSET, *self.fieldsets[2:]]
        if obj is not None and run_options.uses_options({name: getattr(obj, name) for name in run_options.FIELDS}):
            return [*self.fieldsets[:2], self.RUN_OPTIONS_FIELDSET, *self.fieldsets[2:]]
        return self.fieldsets

    @admin.display(description="packages")
    def packages_shown(self, command: Command) -> str:
        return format_html('<span class="rh-mono">{}</span>', " ".join(command.packages or ()))

    @admin.display(description="versions (before → after)")
    def package_outcome(self, command: Command) -> str:
        # Refreshed by command.js with the other live facts, so it shows as soon as the command ends.
        return format_html('<pre class="rh-mono" data-live="packages">{}</pre>', display.facts(command)["packages"])

    @admin.display(description="environment")
    def environment_shown(self, command: Command) -> str:
        return format_html('<pre class="rh-mono">{}</pre>', "\n".join(
            f"{name}={value}" for name, value in (command.environment or {}).items())) if command.environment else "–"

    @admin.display(description="script")
    def script_shown(self, command: Command) -> str:
        return format_html('<pre class="rh-mono rh-script">{}</pre>', command.script) if command.script else "–"

    class Media:
        css = {"all": ["relayhub/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Command]:
        return visibility.commands_for(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_see_relays(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Command | None = None) -> bool:
        if obj is None:
            return may_see_relays(request.user)
        return visibility.commands_for(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return may_run_somewhere(request.user)

    # Commands change only through their state machine, and are kept as the audit trail.
    def has_change_permission(self, request: HttpRequest, obj: Command | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Command | None = None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("run/", view(lambda r: admin_views.run_command(self, r)), name="commands_command_run"),
            path("<path:object_id>/cancel/", view(lambda r, object_id: admin_views.cancel_view(self, r, object_id)),
                 name="commands_command_cancel"),
            path("<path:object_id>/state/", view(lambda r, object_id: admin_views.state_view(self, r, object_id)),
                 name="commands_command_state"),
            path("<path:object_id>/rerun/", view(lambda r, object_id: admin_views.rerun_view(self, r, object_id)),
                 name="commands_command_rerun"),
            path("<path:object_id>/full-output/<str:stream>/",
                 view(lambda r, object_id, stream: admin_views.full_output_view(self, r, object_id, stream)),
                 name="commands_command_full_output"),
            # Async, so not through admin_view (a sync wrapper): it checks the admin's permission itself.
            path("<path:object_id>/stream/", streams.command_stream, name="commands_command_stream"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        return HttpResponseRedirect(reverse("admin:commands_command_run") + (f"?{query}" if query else ""))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        command = self.get_object(request, unquote(object_id))
        if command is not None:
            extra_context = {**admin_views.command_panel(request, command), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="command")
    def short_command(self, command: Command) -> str:
        # One line, cut by CSS with an ellipsis; the whole command is the title.
        return format_html('<code class="rh-ellipsis" title="{}">{}</code>', command.command,
                           Truncator(command.command).chars(200))

    @admin.display(description="queued at", ordering="created_at")
    def queued_at(self, command: Command) -> str:
        return display.moment(command.created_at)

    @admin.display(description="target")
    def target(self, command: Command) -> str:
        if command.target_type != "ssh":
            return "local"
        if command.target_name:
            return command.target_name
        user = f"{command.target_username}@" if command.target_username else ""
        port = f":{command.target_port}" if command.target_port else ""
        return f"ssh {user}{command.target_host}{port}"

    @admin.display(description="status", ordering="status")
    def state(self, command: Command):
        return status_badge(command.status)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, command: Command) -> str:
        return display.human_ms(command.duration_ms)

    @admin.action(description="Cancel the selected commands")
    def cancel_commands(self, request: HttpRequest, queryset: QuerySet[Command]) -> None:
        selected = list(queryset)
        done = sum(admin_views.cancel(self, request, command) for command in selected)
        self.message_user(request, f"Cancelled {done} of {len(selected)} command(s)"
                                   + ("; the others had ended or are not yours to run." if done < len(selected)
                                      else "."), level="success" if done == len(selected) else "warning")

    @admin.action(description="Rerun the selected commands")
    def rerun_commands(self, request: HttpRequest, queryset: QuerySet[Command]) -> HttpResponse | None:
        selected = list(queryset)
        new = [rerun for command in selected if (rerun := admin_views.rerun(self, request, command))]
        if len(new) == 1 == len(selected):
            return HttpResponseRedirect(admin_views.command_url(new[0]))
        self.message_user(request, f"Queued {len(new)} of {len(selected)} command(s) again.",
                          level="success" if len(new) == len(selected) else "warning")
        return None

    @admin.action(description="Duplicate into the run form")
    def duplicate_command(self, request: HttpRequest, queryset: QuerySet[Command]) -> HttpResponse | None:
        selected = list(queryset[:2])
        if len(selected) != 1:
            self.message_user(request, "Select exactly one command to duplicate.", level="warning")
            return None
        if selected[0].is_package_command:
            self.message_user(request, "The run form does not take package commands: rerun it, or queue one "
                                       "through the API or relay_exec --package.", level="warning")
            return None
        return HttpResponseRedirect(f"{reverse('admin:commands_command_run')}?from={selected[0].pk}")


def live_field(key: str):
    @admin.display(description=display.LABELS[key])
    def show(self, command: Command) -> str:
        return format_html('<span data-live="{}">{}</span>', key, display.facts(command)[key])
    return show


for _key in display.LABELS:
    setattr(CommandAdmin, f"live_{_key}", live_field(_key))


@admin.register(CommandBatch)
class CommandBatchAdmin(admin.ModelAdmin):
    list_display = ["id", "short_command", "selector", "target_count", "overall", "created_by", "created_at"]
    list_display_links = ["id", "short_command"]
    list_select_related = ["created_by"]
    search_fields = ["command"]
    fields = ["target_type", "target_host", "target_port", "target_username", "timeout_ms", "priority",
              "max_concurrency", "max_errors", "stopped", "created_by", "created_at"]
    change_form_template = "admin/commands/commandbatch/change_form.html"

    class Media:
        css = {"all": ["relayhub/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[CommandBatch]:
        rows = batches.visible_to(request.user, CommandBatch.objects.all())
        return rows.prefetch_related("commands").order_by("-created_at")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_see_relays(request.user)

    def has_view_permission(self, request: HttpRequest, obj: CommandBatch | None = None) -> bool:
        if obj is None:
            return may_see_relays(request.user)
        return batches.visible_to(request.user, CommandBatch.objects.filter(pk=obj.pk)).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: CommandBatch | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: CommandBatch | None = None) -> bool:
        return False

    def get_urls(self):
        # Async, so not through admin_view (a sync wrapper): it checks the admin's permission itself.
        return [path("<path:object_id>/stream/", streams.batch_stream, name="commands_commandbatch_stream"),
                *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        batch = self.get_object(request, unquote(object_id))
        if batch is not None:
            extra_context = {**admin_views.batch_panel(batch, request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="command")
    def short_command(self, batch: CommandBatch) -> str:
        return Truncator(batch.command).chars(60)

    @admin.display(description="targets")
    def target_count(self, batch: CommandBatch) -> int:
        return len(batch.destinations)

    @admin.display(description="status")
    def overall(self, batch: CommandBatch):
        return status_badge(batches.overall_status(batch, batches.targets(batch)))


@relay_page_panel
def recent_commands(request: HttpRequest, relay) -> dict:
    return {"recent_commands": visibility.commands_for(request.user).filter(machine_id=relay.machine_id)
            .select_related("created_by")[:15]}
