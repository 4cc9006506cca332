"""Who may see and run what: django-guardian object permissions per relay.

Four roles per relay: ``view_relay`` (viewer) shows a relay and the commands of
its machine; ``run_command`` (runner) allows queueing on that machine;
``configure_relay`` (configurer) allows changing what the relay trusts and allows:
config pushes (SSH targets, pinned host keys, allowed commands, metrics interval),
which shared credentials it holds, and whether its commands require approval;
``approve_command`` (approver) allows approving or rejecting commands waiting for
approval on its machine (``commands.approvals``), never one's own. Running never
implies configuring or approving. Superusers, and users holding the model-wide
permission, see everything. Objects outside a user's reach are reported as
not found, never as forbidden, so their existence does not leak.
"""

from __future__ import annotations

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from assignments.models import RelayAssignment

VIEW = "assignments.view_relay"
RUN = "assignments.run_command"
CONFIGURE = "assignments.configure_relay"
APPROVE = "assignments.approve_command"


def relays_for(user, perm: str = VIEW) -> QuerySet[RelayAssignment]:
    if not getattr(user, "is_authenticated", False) or getattr(user, "relay", None):
        return RelayAssignment.objects.none()
    return get_objects_for_user(user, perm, klass=RelayAssignment, accept_global_perms=True)


def machine_ids_for(user, perm: str = VIEW) -> QuerySet:
    return relays_for(user, perm).values("machine_id")


def configures_any(user) -> bool:
    """Whether the user may configure some relay (model-wide, or on one granted to them)."""
    return user.has_perm(CONFIGURE) or relays_for(user, CONFIGURE).exists()


def configures_all(user, relay_ids) -> bool:
    """Whether the user holds ``configure_relay`` on every one of these relays."""
    wanted = set(relay_ids)
    return wanted <= set(relays_for(user, CONFIGURE).filter(pk__in=wanted).values_list("pk", flat=True))


def can_run_on(user, machine_id: str) -> bool:
    """Model-wide holders may queue anywhere (a relay may come later); others where a granted relay serves."""
    if getattr(user, "relay", None):
        return False
    return user.has_perm(RUN) or relays_for(user, RUN).filter(machine_id=machine_id).exists()


def configures(user, relay: RelayAssignment) -> bool:
    return relays_for(user, CONFIGURE).filter(pk=relay.pk).exists()


def approves_machines(user, machine_ids) -> bool:
    """Whether the user holds ``approve_command`` on every relay of each of these machines (model-wide counts).

    A machine no relay serves has nobody to approve for it but model-wide holders."""
    if getattr(user, "relay", None) or not getattr(user, "is_authenticated", False):
        return False
    if user.has_perm(APPROVE):
        return True
    wanted = set(machine_ids)
    relays = RelayAssignment.objects.filter(machine_id__in=wanted)
    granted = set(relays_for(user, APPROVE).filter(machine_id__in=wanted).values_list("pk", flat=True))
    serving = set(relays.values_list("machine_id", flat=True))
    return serving == wanted and set(relays.values_list("pk", flat=True)) <= granted
