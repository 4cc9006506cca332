"""Who may do what with a job template: django-guardian object permissions per template.

``launch_template`` runs the template, with its command and on its selector, and nothing else:
it grants no ``run_command`` on the relays, so a launch-only operator cannot type free-form
commands there. ``approve_template`` approves its launches (never one's own). Superusers, and
holders of the model-wide permission, hold them on every template. ``change_jobtemplate``
(model-wide) edits templates. Templates outside a user's reach answer 404.
"""

from __future__ import annotations

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from runbooks.models import JobTemplate

LAUNCH = "runbooks.launch_template"
APPROVE = "runbooks.approve_template"


def templates_for(user, perms: tuple[str, ...] = (LAUNCH, APPROVE, "runbooks.view_jobtemplate")) -> QuerySet:
    """Templates the user may see: any one of ``perms`` on it, or model-wide."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "relay", None):
        return JobTemplate.objects.none()
    return get_objects_for_user(user, list(perms), klass=JobTemplate, any_perm=True, accept_global_perms=True)


def may_launch(user, template: JobTemplate) -> bool:
    if not getattr(user, "is_authenticated", False) or getattr(user, "relay", None):
        return False
    return user.has_perm(LAUNCH) or user.has_perm(LAUNCH, template)


def launches_any(user) -> bool:
    return templates_for(user, (LAUNCH,)).exists()
