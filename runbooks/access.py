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

from runbooks.models import JobTemplate, TemplateSchedule

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


# Schedules: seen with the model's view or change permission, on templates the user may see; added, changed or
# deleted with the model permission and launch_template on the template (before and after a change): a user
# cannot schedule what they could not launch. A schedule runs as the user who last saved it.
SCHEDULE_VIEW = ("runbooks.view_templateschedule", "runbooks.change_templateschedule")


def schedules_for(user) -> QuerySet:
    if getattr(user, "relay", None) or not any(user.has_perm(perm) for perm in SCHEDULE_VIEW):
        return TemplateSchedule.objects.none()
    return TemplateSchedule.objects.filter(template__in=templates_for(user))


def may_edit_schedule(user, action: str, template: JobTemplate | None = None) -> bool:
    """``action``: add, change or delete; with a template, launch_template on it too, else on some template."""
    if not user.has_perm(f"runbooks.{action}_templateschedule"):
        return False
    return may_launch(user, template) if template is not None else launches_any(user)
