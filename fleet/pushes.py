"""A relay's ``ssh_targets`` policy follows the SSH targets on the hub that name it.

Whenever targets change, each relay they touch gets the whole list again, one
entry per pinned host key (an entry without a key leaves trust to known_hosts).
A list equal to the last one sent is not sent again.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from assignments.models import RelayAssignment
from configpush.models import ConfigPush, PushStatus, PushType
from fleet.models import SSHTarget


def policy_for(relay: RelayAssignment) -> dict:
    entries = []
    for target in SSHTarget.objects.filter(relays=relay, enabled=True).order_by("host", "port", "pk"):
        keys = target.pinned_keys()
        entry = {"host": target.host, "port": target.port}
        entries.extend([{**entry, "hostKey": key} for key in keys] if keys else [entry])
    unique = list({(e["host"], e["port"], e.get("hostKey")): e for e in entries}.values())
    return {"targets": unique}


def sync_relays(relay_ids: Iterable, created_by=None) -> list[ConfigPush]:
    """Queue an ``ssh_targets`` push for each relay whose target list changed."""
    pushes = []
    for relay in RelayAssignment.objects.filter(pk__in=set(relay_ids)):
        payload = policy_for(relay)
        sent = ConfigPush.objects.filter(relay=relay, push_type=PushType.SSH_TARGETS).order_by("-created_at", "-id")
        last = sent.first()
        if last is not None and last.payload == payload:
            continue
        if last is None and not payload["targets"]:
            continue  # never managed from the hub: leave the relay's policy alone
        sent.filter(status=PushStatus.PENDING).delete()  # superseded before it was sent
        pushes.append(ConfigPush.objects.create(relay=relay, push_type=PushType.SSH_TARGETS, payload=payload,
                                                created_by=created_by))
    return pushes


def sync_after_commit(relay_ids: Iterable, created_by=None) -> None:
    ids = set(relay_ids)
    if ids:
        transaction.on_commit(lambda: sync_relays(ids, created_by))
