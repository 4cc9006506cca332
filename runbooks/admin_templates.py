"""Job templates in the admin: edit them (model permissions), launch them from a form built from their parameters."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from rest_framework.exceptions import PermissionDenied, ValidationError

from commands import admin_views, batches
from commands.models import CommandBatch
from fleet.admin_run import error_text
from runbooks import access
from runbooks.api import CREDENTIAL_AUTHOR_PERMISSION
from runbooks.launch import destinations, launch, narrowing_or_400
from runbooks.launch_form import LaunchForm
from runbooks.models import JobTemplate, Launch


class JobTemplateForm(forms.ModelForm):
    class Meta:
        model = JobTemplate
        fields = "__all__"
        widgets = {
            "command": forms.Textarea(attrs={"rows": 2, "cols": 80, "spellcheck": "false", "class": "rh-mono"}),
            "script": forms.Textarea(attrs={"rows": 10, "cols": 80, "spellcheck": "false", "class": "rh-mono"}),
            "parameters": forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false", "class": "rh-mono"}),
            "environment": forms.Textarea(attrs={"rows": 2, "cols": 80, "spellcheck": "false", "class": "rh-mono"}),
            "selector": forms.TextInput(attrs={"size": 60, "placeholder": "role=web,env=prod"}),
        }

    user = None

    def clean_parameters(self):
        parameters = self.cleaned_data["parameters"]
        if isinstance(parameters, list) and any(isinstance(item, dict) and item.get("type") == "secret"
                                                for item in parameters) \
                and self.user is not None and not self.user.has_perm(CREDENTIAL_AUTHOR_PERMISSION):
            raise forms.ValidationError("A secret parameter hands a shared credential to the command: it takes the "
                                        "permission to change shared credentials.")
        return parameters


@admin.register(JobTemplate)
class JobTemplateAdmin(admin.ModelAdmin):
    form = JobTemplateForm
    list_display = ["name", "where", "parameter_count", "requires_approval", "launch_link"]
    search_fields = ["name", "description"]
    fieldsets = [
        (None, {"fields": ["name", "description"]}),
        ("What runs", {"fields": ["command", "script", "interpreter", "parameters"]}),
        ("Where", {"fields": ["target_kind", "selector"]}),
        ("How it runs", {"fields": ["working_directory", "run_as", "environment", "timeout_ms", "priority"]}),
        ("Rollout", {"fields": ["max_concurrency", "max_errors", "requires_approval"]}),
    ]

    class Media:
        css = {"all": ["relayhub/admin.css"]}

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user
        return form

    def get_queryset(self, request: HttpRequest):
        return access.templates_for(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("runbooks.add_jobtemplate") or access.templates_for(request.user).exists()

    def has_view_permission(self, request: HttpRequest, obj: JobTemplate | None = None) -> bool:
        if obj is None:
            return self.has_module_permission(request)
        return access.templates_for(request.user).filter(pk=obj.pk).exists()

    def save_model(self, request: HttpRequest, obj: JobTemplate, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="runs on")
    def where(self, template: JobTemplate) -> str:
        return f"{template.get_target_kind_display()}: {template.selector}"

    @admin.display(description="parameters")
    def parameter_count(self, template: JobTemplate) -> int:
        return len(template.parameters or [])

    @admin.display(description="")
    def launch_link(self, template: JobTemplate):
        url = reverse("admin:runbooks_jobtemplate_launch", args=[template.pk])
        return format_html('<a class="button" href="{}">Launch</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<path:object_id>/launch/", view(lambda r, object_id: launch_view(self, r, object_id)),
                     name="runbooks_jobtemplate_launch"), *super().get_urls()]


def launch_view(model_admin: JobTemplateAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    template = model_admin.get_object(request, unquote(object_id))
    if template is None:
        raise Http404("no such template")
    if not access.may_launch(request.user, template):
        raise DjangoPermissionDenied(f"You may not launch {template.name}.")
    form = LaunchForm(request.POST or None, template=template)
    if request.method == "POST" and form.is_valid():
        try:
            made = launch(template, request.user, form.values(), narrowing=form.cleaned_data["selector"],
                          queue_if_offline=form.cleaned_data["queue_if_offline"])
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, error_text(exc))
        else:
            model_admin.log_addition(request, made, f"Launched {template.name}")
            messages.success(request, f"Launched {template.name} on {len(made.batch.destinations)} target(s).")
            return redirect(admin_views.batch_url(made.batch))
    try:
        count = len(destinations(template, narrowing_or_400(request.POST.get("selector", ""))))
    except ValidationError:
        count = None
    return TemplateResponse(request, "admin/runbooks/jobtemplate/launch.html", {
        **model_admin.admin_site.each_context(request),
        "opts": JobTemplate._meta, "title": f"Launch {template.name}", "template": template, "form": form,
        "adminform": admin.helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}),
        "errors": admin.helpers.AdminErrorList(form, []), "target_count": count,
        "what": template.script or template.command,
        "environment": json.dumps(template.environment, indent=1) if template.environment else "",
    })


@admin.register(Launch)
class LaunchAdmin(admin.ModelAdmin):
    list_display = ["id", "template", "launched_by", "shown_parameters", "batch_link", "created_at"]
    list_filter = ["template"]
    list_select_related = ["template", "launched_by", "batch"]

    def get_queryset(self, request: HttpRequest):
        visible = batches.visible_to(request.user, CommandBatch.objects.all())
        return super().get_queryset(request).filter(batch__in=visible)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return JobTemplateAdmin.has_module_permission(self, request)

    def has_view_permission(self, request: HttpRequest, obj: Launch | None = None) -> bool:
        return self.has_module_permission(request) if obj is None else self.get_queryset(request).filter(
            pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Launch | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Launch | None = None) -> bool:
        return False

    @admin.display(description="parameters")
    def shown_parameters(self, launch_: Launch) -> str:
        return ", ".join(f"{name}={value}" for name, value in launch_.parameters.items()) or "–"

    @admin.display(description="batch")
    def batch_link(self, launch_: Launch):
        return format_html('<a href="{}">batch #{}</a>', admin_views.batch_url(launch_.batch), launch_.batch_id)
