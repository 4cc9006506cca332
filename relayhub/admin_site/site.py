"""The admin site: relayhub's management portal, with the dashboard as its index.

Loaded through ``RelayHubAdminConfig`` in INSTALLED_APPS, before the models
are ready, so model imports stay inside the methods.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse

from relayhub.admin_site.titles import with_plain_titles


class RelayHubAdminSite(admin.AdminSite):
    site_header = "relayhub"
    site_title = "relayhub"
    index_title = "Dashboard"
    # "/" is the relay protocol, not a site for people.
    site_url = None
    # Tables with badges and meters need the width; the dashboard lists the models.
    enable_nav_sidebar = False
    index_template = "admin/relayhub/dashboard.html"

    def register(self, model_or_iterable, admin_class=None, **options) -> None:
        """Every model admin, Django's and other apps' included, gets plain titles (``titles``)."""
        super().register(model_or_iterable, with_plain_titles(admin_class or admin.ModelAdmin), **options)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from relayhub.admin_site.dashboard import dashboard

        return super().index(request, {**dashboard(request.user), **(extra_context or {})})

    def get_urls(self):
        from django.urls import path

        from relayhub.admin_site.live import dashboard_stream

        # Async, so not through admin_view (a sync wrapper): it checks has_permission itself.
        return [path("live/", dashboard_stream, name="dashboard_stream"), *super().get_urls()]

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        from assignments import access

        context = super().each_context(request)
        user = request.user
        context["may_run_commands"] = bool(
            user.is_active and user.is_staff
            and (user.has_perm(access.RUN) or access.relays_for(user, access.RUN).exists())
        )
        return context


class RelayHubAdminConfig(AdminConfig):
    default_site = "relayhub.admin_site.site.RelayHubAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovery: every app's admin module, knox's among them
        from relayhub.admin_site import tokens  # noqa: F401 - replaces knox's token admin
