"""Which commands a user may see: those on the machines of the relays the user may view."""

from __future__ import annotations

from django.db.models import QuerySet

from assignments import access
from commands.models import Command


def commands_for(user) -> QuerySet[Command]:
    """Commands on machines the user may see; model-wide viewers see them all."""
    if getattr(user, "relay", None) or not getattr(user, "is_authenticated", False):
        return Command.objects.none()
    if user.has_perm(access.VIEW):
        return Command.objects.all()
    return Command.objects.filter(machine_id__in=access.machine_ids_for(user))
