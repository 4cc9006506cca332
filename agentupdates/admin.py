"""Agent releases in the admin: upload a wheel (signed on upload), the list with sha256, the fleet's versions."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.http import HttpRequest

from agentupdates import releases
from agentupdates.models import AgentRelease, AgentVersionPin
from assignments.labels import LabelError, parse_selector
from assignments.models import RelayAssignment, RelayStatus
from relayhub.relay import release_key


class UploadForm(forms.ModelForm):
    upload = forms.FileField(label="Wheel", help_text=(
        "A relay_agent wheel (relay_agent-VERSION-py3-none-any.whl, from pip wheel --no-deps relay_agent); "
        "its version is read from the wheel, and it is signed with the agent release key on upload."))

    class Meta:
        model = AgentRelease
        fields: list[str] = []

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.release: AgentRelease | None = None

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("upload")
        if upload is not None:
            if upload.size > releases.MAX_WHEEL_BYTES:
                raise forms.ValidationError(f"the wheel is larger than {releases.MAX_WHEEL_BYTES} bytes")
            try:
                self.release = releases.register(upload.read(), upload.name, self.user)
            except (releases.ReleaseError, release_key.ReleaseKeyError) as exc:
                raise forms.ValidationError(str(exc)) from None
        return data

    def save(self, commit: bool = True) -> AgentRelease:
        return self.release


def version_counts() -> list[dict]:
    """Agent versions across relays that reported one, most used first: [{"version", "count"}]."""
    rows = (RelayStatus.objects.exclude(version="").values("version").annotate(count=Count("pk"))
            .order_by("-count", "version"))
    return list(rows)


@admin.register(AgentRelease)
class AgentReleaseAdmin(admin.ModelAdmin):
    list_display = ["version", "sha256", "size", "uploaded_by", "created_at"]
    search_fields = ["version", "sha256"]
    readonly_fields = ["version", "filename", "size", "sha256", "signature", "uploaded_by", "created_at"]
    change_list_template = "admin/agentupdates/agentrelease/change_list.html"

    def get_form(self, request: HttpRequest, obj: AgentRelease | None = None, change: bool = False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        form = UploadForm

        class BoundUpload(form):
            def __init__(self, *args, **inner) -> None:
                super().__init__(*args, user=request.user, **inner)

        return BoundUpload

    def get_fields(self, request: HttpRequest, obj: AgentRelease | None = None) -> list[str]:
        return ["upload"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: AgentRelease | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: AgentRelease | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: AgentRelease, form: UploadForm, change: bool) -> None:
        pass  # registered (and saved) by the form, with its signature

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        pass

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra = {"agent_versions": version_counts(), "release_public_key": release_key.public_key_text(),
                 "release_key_file": release_key.key_path()}
        return super().changelist_view(request, {**extra, **(extra_context or {})})


@admin.register(AgentVersionPin)
class AgentVersionPinAdmin(admin.ModelAdmin):
    """Pins by label; the model permissions say who may change them (superusers, or whom they grant)."""

    list_display = ["selector", "version", "note", "relays_pinned", "created_by", "updated_at"]
    search_fields = ["selector", "version", "note"]
    readonly_fields = ["relays_pinned", "created_by", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: AgentVersionPin, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="relays it pins now")
    def relays_pinned(self, pin: AgentVersionPin) -> int | str:
        try:
            selector = parse_selector(pin.selector)
        except LabelError:
            return "-"
        return len(selector.filter(RelayAssignment.objects.only("labels")))
