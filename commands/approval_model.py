"""The four-eyes record (``Approval``) and whether a command needs one (``Need``, ``needed_for``).

``commands.approvals`` is the gate's API and says how it works; this module holds only what
``commands.models`` and ``commands.batches`` need to hold a new command or batch back, so that
they need not import the gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from assignments.models import RelayAssignment
from commands.choices import ApprovalState
from commands.signals import approval_requested

ASKED = "approval was asked for"


@dataclass(frozen=True)
class Need:
    """Why a command or batch waits for approval, and who may approve it besides relay approvers.

    ``approver_permission`` ("app_label.codename"), held on ``approver_object`` (a guardian object
    permission) or model-wide, also lets a user approve: e.g. ``runbooks.approve_template`` on the template.
    """

    reasons: Sequence[str] = ()
    approver_object: models.Model | None = None
    approver_permission: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.reasons, str):
            raise TypeError("reasons is a list of sentences, not one string")
        if self.approver_object is not None and not self.approver_permission:
            raise ValueError("an approver_object needs the approver_permission held on it")
        if self.approver_permission:
            app_label, dot, codename = self.approver_permission.partition(".")
            if not (app_label and dot and codename):
                raise ValueError(f"approver_permission must read app_label.codename, not {self.approver_permission!r}")
            if self.approver_object is not None and self.approver_object._meta.app_label != app_label:
                raise ValueError(f"{self.approver_permission!r} is not a permission of {self.approver_object._meta.label}")


def needed_for(machine_ids: Iterable[str], extra: Need | None = None) -> Need | None:
    """The need for approval of a command or batch on these machines: ``extra`` (the caller asks for it, e.g. a
    template that requires approval), and each enabled relay of theirs that requires approval; None if neither."""
    relays = RelayAssignment.objects.filter(machine_id__in=set(machine_ids), enabled=True, requires_approval=True)
    reasons = [f"relay {name!r} requires approval" for name in relays.order_by("name").values_list("name", flat=True)]
    if extra is None:
        return Need(reasons=reasons) if reasons else None
    return Need(reasons=[*(extra.reasons or [ASKED]), *reasons], approver_object=extra.approver_object,
                approver_permission=extra.approver_permission)


def default_expiry():
    return timezone.now() + timedelta(seconds=settings.RELAYHUB["APPROVAL_TTL_S"])


class Approval(models.Model):
    """A command or a batch held back until a user other than its requester approves it (or it is rejected,
    expires, or is withdrawn by a cancel). Its state changes only by conditional updates (``commands.approvals``)."""

    command = models.OneToOneField("commands.Command", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="approval", editable=False)
    batch = models.OneToOneField("commands.CommandBatch", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="approval", editable=False)
    state = models.CharField(max_length=10, choices=ApprovalState.choices, default=ApprovalState.PENDING,
                             editable=False)
    # Why it needs approval: "relay 'db-1' requires approval", "template 'Restart nginx' requires approval".
    reasons = models.JSONField(default=list, editable=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", editable=False)
    requested_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(default=default_expiry, editable=False)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What the approver or rejecter said.
    reason = models.TextField(blank=True, editable=False)
    # Who else may decide: holders of approver_permission on this object (or model-wide).
    approver_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", editable=False)
    approver_id = models.CharField(max_length=64, blank=True, editable=False)
    approver_object = GenericForeignKey("approver_type", "approver_id")
    approver_permission = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [models.CheckConstraint(
            condition=models.Q(command__isnull=False, batch__isnull=True)
            | models.Q(command__isnull=True, batch__isnull=False), name="approval_of_a_command_or_a_batch")]
        indexes = [models.Index(fields=["state", "expires_at"], name="approval_due_idx")]

    def __str__(self) -> str:
        return f"approval {self.pk} of {'command' if self.command_id else 'batch'} {self.command_id or self.batch_id}"

    @classmethod
    def open(cls, need: Need, *, command: Any = None, batch: Any = None, requested_by: Any = None) -> Approval:
        """The pending approval of a command or batch just created in ``awaiting_approval`` (held back)."""
        target, now = need.approver_object, timezone.now()
        approval = cls.objects.create(
            command=command, batch=batch, reasons=list(need.reasons), requested_by=requested_by, requested_at=now,
            expires_at=now + timedelta(seconds=settings.RELAYHUB["APPROVAL_TTL_S"]),
            approver_type=ContentType.objects.get_for_model(target) if target is not None else None,
            approver_id=str(target.pk) if target is not None else "", approver_permission=need.approver_permission)
        # Receivers (notifications) act once the transaction commits; a rolled-back request asks nobody.
        approval_requested.send(sender=cls, approval=approval)
        return approval

    @property
    def subject(self) -> Any:
        """The command or the batch."""
        return self.command if self.command_id else self.batch

    @property
    def kind(self) -> str:
        return "command" if self.command_id else "batch"

    def machine_ids(self) -> list[str]:
        return [self.command.machine_id] if self.command_id else list(self.batch.machine_ids)

    @property
    def ttl(self) -> timedelta:
        return self.expires_at - self.requested_at


def of(subject: Any) -> Approval | None:
    """The approval of a command or batch, or None."""
    try:
        return subject.approval
    except Approval.DoesNotExist:
        return None
