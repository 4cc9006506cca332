"""Who may use the operator API and its schema: signed-in users, never relay keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission, DjangoModelPermissions

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class IsOperator(BasePermission):
    """A signed-in user; a relay key is refused here with 403."""

    message = "relay keys may not use operator routes"

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not getattr(user, "relay", None))


class IsStaffOperator(IsOperator):
    """A signed-in staff user: the OpenAPI schema and docs map every route, which only staff need."""

    message = "the API schema is for staff users"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return super().has_permission(request, view) and bool(request.user.is_staff)


class ModelPermissions(DjangoModelPermissions):
    """DRF's, with ``view_*`` needed to read."""

    perms_map = {**DjangoModelPermissions.perms_map,
                 "GET": ["%(app_label)s.view_%(model_name)s"], "HEAD": ["%(app_label)s.view_%(model_name)s"]}
