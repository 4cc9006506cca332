"""Keep relays' ``ssh_targets`` pushes in step with the targets, however they change (admin, API, import)."""

from __future__ import annotations

from django.db.models.signals import m2m_changed, post_save, pre_delete
from django.dispatch import receiver

from fleet import pushes
from fleet.models import SSHTarget


@receiver(post_save, sender=SSHTarget, dispatch_uid="fleet.target_saved")
def _target_saved(sender, instance: SSHTarget, created: bool, **kwargs) -> None:
    if not created:
        pushes.sync_after_commit(instance.relays.values_list("pk", flat=True))


@receiver(pre_delete, sender=SSHTarget, dispatch_uid="fleet.target_deleted")
def _target_deleted(sender, instance: SSHTarget, **kwargs) -> None:
    pushes.sync_after_commit(list(instance.relays.values_list("pk", flat=True)))


@receiver(m2m_changed, sender=SSHTarget.relays.through, dispatch_uid="fleet.target_relays_changed")
def _relays_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if action == "pre_clear":
        instance._cleared_relays = list(instance.relays.values_list("pk", flat=True)) if not reverse else [instance.pk]
    elif action == "post_clear":
        pushes.sync_after_commit(getattr(instance, "_cleared_relays", []))
    elif action in ("post_add", "post_remove"):
        pushes.sync_after_commit(pk_set if not reverse else [instance.pk])
