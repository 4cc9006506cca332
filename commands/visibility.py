"""Which commands a user may see: those on the machines of the relays the user may view, and their own.

One's own include what a job template one may launch ran on relays one cannot otherwise see.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from assignments import access
from commands.models import Command


def commands_for(user) -> QuerySet[Command]:
    """Commands on machines the user may see; model-wide viewers see them all."""
    if getattr(user, "relay", None) or not getattr(user, "is_authenticated", False):
        return Command.objects.none()
    if user.has_perm(access.VIEW):
        return Command.objects.all()
    return Command.objects.filter(Q(machine_id__in=access.machine_ids_for(user)) | Q(created_by=user))
