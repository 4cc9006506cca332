"""Where a batch goes: SSH targets by id or selector, or relays' machines by selector, as the caller may see them."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from rest_framework import exceptions, serializers

from assignments import access
from assignments.labels import Selector
from assignments.models import RelayAssignment
from fleet.models import SSHTarget


def targets_for(user, perm: str = access.VIEW) -> QuerySet[SSHTarget]:
    """Targets reached by at least one relay on which the user holds ``perm``."""
    return SSHTarget.objects.filter(relays__in=access.relays_for(user, perm)).distinct()


def select_targets(user, selector: Selector) -> list[SSHTarget]:
    rows = targets_for(user).filter(enabled=True).prefetch_related("relays__status")
    return selector.filter(rows.order_by("name"))


def select_relays(user, selector: Selector) -> list[RelayAssignment]:
    rows = access.relays_for(user).filter(enabled=True).select_related("status").order_by("machine_id", "name")
    return selector.filter(rows)


def targets_by_id(user, ids: Iterable[int]) -> list[SSHTarget]:
    wanted = list(dict.fromkeys(ids))
    found = {target.pk: target for target in targets_for(user).prefetch_related("relays__status").filter(pk__in=wanted)}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise serializers.ValidationError({"targets": [f"no such SSH target: {', '.join(map(str, missing))}"]})
    disabled = [found[pk].name for pk in wanted if not found[pk].enabled]
    if disabled:
        raise serializers.ValidationError({"targets": [f"disabled SSH target(s): {', '.join(disabled)}"]})
    return [found[pk] for pk in wanted]


def machine_for(target: SSHTarget, user, may_run=None) -> str:
    """The machine whose relays run the target's commands: one with a relay online, if any, that the user may run on.

    ``may_run(machine_id)`` answers whether the user may run there (``access.can_run_on`` by default).
    """
    may_run = may_run or (lambda machine_id: access.can_run_on(user, machine_id))
    relays = [relay for relay in target.relays.all() if relay.enabled]
    if not relays:
        raise serializers.ValidationError({"targets": [f"SSH target {target.name!r} has no enabled relay"]})
    runnable = [relay for relay in relays if may_run(relay.machine_id)]
    if not runnable:
        raise exceptions.PermissionDenied(f"you may not run commands on the relays of SSH target {target.name!r}")
    online = [relay for relay in runnable if relay.is_online]
    return (online or runnable)[0].machine_id


def target_destinations(user, targets: list[SSHTarget]) -> list[dict]:
    answers: dict[str, bool] = {}  # one permission check per machine, not per target

    def may_run(machine_id: str) -> bool:
        if machine_id not in answers:
            answers[machine_id] = access.can_run_on(user, machine_id)
        return answers[machine_id]

    return [{"machine_id": machine_for(target, user, may_run), "name": target.name, "target_host": target.host,
             "target_port": target.port, "target_username": target.username} for target in targets]
