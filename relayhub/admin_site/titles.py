"""Plain page titles and help texts for every model admin of the site (``RelayHubAdminSite.register``).

Django titles a list "Select relay to change" and an object's page "Change relay"; here a list is
titled by what it lists ("Relays") and an object's page by the object's name. Two-pane pickers
(``filter_horizontal``) lose Django's "Hold down Control" hint, which is about plain multi-selects.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR
from django.http import HttpRequest
from django.utils.text import capfirst


def list_title(opts) -> str:
    return capfirst(opts.verbose_name_plural)


class PlainTitles:
    """Mixed into each ModelAdmin the site registers."""

    def changelist_view(self: admin.ModelAdmin, request: HttpRequest, extra_context: dict[str, Any] | None = None):
        if IS_POPUP_VAR not in request.GET:  # a popup keeps "Select relay": it is for choosing one
            extra_context = {"title": list_title(self.opts), **(extra_context or {})}
        return super().changelist_view(request, extra_context)

    def render_change_form(self: admin.ModelAdmin, request: HttpRequest, context: dict[str, Any], add: bool = False,
                           change: bool = False, form_url: str = "", obj: Any = None):
        if obj is not None and not add and context.get("subtitle"):
            context["title"], context["subtitle"] = context["subtitle"], None
        return super().render_change_form(request, context, add, change, form_url, obj)

    def formfield_for_manytomany(self: admin.ModelAdmin, db_field, request: HttpRequest, **kwargs: Any):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and db_field.name in (*self.filter_horizontal, *self.filter_vertical):
            field.help_text = db_field.help_text
        return field


def with_plain_titles(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    if issubclass(admin_class, PlainTitles):
        return admin_class
    return type(admin_class.__name__, (PlainTitles, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__})
