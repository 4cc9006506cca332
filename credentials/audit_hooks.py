"""Audit entries for shared credentials: created, changed (which parts, never the value), assigned, deleted."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from audit import trail
from audit.models import Action
from credentials.models import SharedCredential

DESCRIBED = ("name", "credential_type", "target_host")


def connect() -> None:
    pre_save.connect(_remember, sender=SharedCredential, dispatch_uid="audit-credential-before")
    post_save.connect(_saved, sender=SharedCredential, dispatch_uid="audit-credential-saved")
    post_delete.connect(_deleted, sender=SharedCredential, dispatch_uid="audit-credential-deleted")
    m2m_changed.connect(_assignments, sender=SharedCredential.assigned_relays.through,
                        dispatch_uid="audit-credential-assigned")


def _remember(sender: Any, instance: SharedCredential, **kwargs: Any) -> None:
    before = SharedCredential.objects.filter(pk=instance.pk).values(*DESCRIBED, "ciphertext").first() \
        if not instance._state.adding else None
    instance._audit_before = before


def _saved(sender: Any, instance: SharedCredential, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_audit_before", None)
    if created or before is None:
        trail.record(Action.CREDENTIAL_CREATE, actor=instance.created_by, obj=instance,
                     detail={"type": instance.credential_type, "target_host": instance.target_host})
        return
    changed = [name for name in DESCRIBED if before[name] != getattr(instance, name)]
    rotated = bytes(before["ciphertext"]) != bytes(instance.ciphertext)
    if changed or rotated:
        trail.record(Action.CREDENTIAL_CHANGE, obj=instance, detail={"changed": changed, "rotated": rotated})


def _deleted(sender: Any, instance: SharedCredential, **kwargs: Any) -> None:
    trail.record(Action.CREDENTIAL_DELETE, obj=instance, detail={"type": instance.credential_type})


CHANGES = {"post_add": "assigned", "post_remove": "unassigned", "post_clear": "unassigned all"}


def _assignments(sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set | None,
                 **kwargs: Any) -> None:
    if action not in CHANGES:
        return
    others = list(model.objects.filter(pk__in=pk_set)) if pk_set else []
    if not reverse:  # credential.assigned_relays changed
        trail.record(Action.CREDENTIAL_CHANGE, obj=instance,
                     detail={"relays": CHANGES[action], "which": sorted(map(str, others))})
        return
    for credential in others:  # relay.shared_credentials changed
        trail.record(Action.CREDENTIAL_CHANGE, obj=credential,
                     detail={"relays": CHANGES[action], "which": [str(instance)]})
