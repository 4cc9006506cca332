from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from assignments.models import RelayStatus
from audit import trail
from audit.models import Action
from assignments.signals import config_queued
from configpush import payloads
from relayhub.web import metrics
from relayhub.web.fields import epoch_ms


class PushType(models.TextChoices):
    CREDENTIAL = "credential"
    SSH_TARGETS = "ssh_targets", "SSH targets"
    ALLOWED_COMMANDS = "allowed_commands", "Allowed commands"
    METRICS_INTERVAL = "metrics_interval", "Metrics interval"
    RUN_AS = "run_as", "Run-as users"


class PushStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    ACKED = "acked", "Acknowledged"
    FAILED = "failed"


class ConfigPush(models.Model):
    relay = models.ForeignKey("assignments.RelayAssignment", on_delete=models.CASCADE, related_name="config_pushes")
    push_type = models.CharField(max_length=20, choices=PushType.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=PushStatus.choices, default=PushStatus.PENDING, editable=False)
    tries = models.PositiveIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    acked_at = models.DateTimeField(null=True, blank=True, editable=False)
    error_message = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "config push"
        verbose_name_plural = "config pushes"
        indexes = [models.Index(fields=["relay", "status"])]

    def __str__(self) -> str:
        return f"{self.push_type} → {self.relay_id} ({self.status})"

    def clean(self) -> None:
        try:
            self.payload = payloads.validate(self.push_type, self.payload)
        except ValidationError as exc:
            raise ValidationError({"payload": exc.messages}) from None

    def save(self, *args, **kwargs) -> None:
        adding = self._state.adding
        if adding:
            self.payload = payloads.validate(self.push_type, self.payload)
        super().save(*args, **kwargs)
        if adding:
            payload = self.payload if isinstance(self.payload, dict) else {}
            # Names only: a credential push carries a secret value, which is never recorded.
            trail.record(Action.CONFIG_PUSH, actor=self.created_by, obj=self,
                         detail={"type": self.push_type, "relay": str(self.relay), "fields": sorted(payload),
                                 "name": str(payload.get("name", ""))[:200]})
        if adding and self.status == PushStatus.PENDING:
            metrics.config_pushes(PushStatus.PENDING)
            RelayStatus.note_config_pending(self.relay_id, timezone.now())
            relay_id, machine_id = self.relay_id, self.relay.machine_id
            transaction.on_commit(lambda: config_queued.send(sender=ConfigPush, relay_id=relay_id,
                                                             machine_id=machine_id))

    def to_wire(self) -> dict:
        return {
            "_id": str(self.pk),
            "pushType": self.push_type,
            "payload": json.dumps(self.payload),
            "createdAt": epoch_ms(self.created_at),
        }

    @classmethod
    def deliver_pending(cls, relay) -> list[ConfigPush]:
        """Hand out the relay's pending pushes and mark them sent."""
        now = timezone.now()
        pushes = list(cls.objects.filter(relay=relay, status=PushStatus.PENDING))
        status = getattr(relay, "status", None)  # as read with the relay's key
        if status is None or status.config_pending_at is not None:
            RelayStatus.note_config_fetched(relay.pk, now)
        delivered = []
        for push in pushes:
            if cls.objects.filter(pk=push.pk, status=PushStatus.PENDING).update(
                status=PushStatus.SENT, sent_at=now, tries=models.F("tries") + 1
            ):
                delivered.append(push)
        metrics.config_pushes(PushStatus.SENT, len(delivered))
        return delivered

    def requeue_or_fail(self, max_tries: int) -> bool:
        """An unacknowledged push goes out again, until ``max_tries`` sends have failed."""
        sent = ConfigPush.objects.filter(pk=self.pk, status=PushStatus.SENT, sent_at=self.sent_at)
        if self.tries >= max_tries:
            failed = bool(sent.update(status=PushStatus.FAILED,
                                      error_message=f"not acknowledged after {self.tries} deliveries"))
            metrics.config_pushes(PushStatus.FAILED, int(failed))
            return failed
        requeued = bool(sent.update(status=PushStatus.PENDING))
        if requeued:
            metrics.config_pushes(PushStatus.PENDING)
            RelayStatus.note_config_pending(self.relay_id, timezone.now())
        return requeued

    def acknowledge(self, success: bool, error_message: str = "") -> bool:
        """Record the relay's ack; a repeated ack of a finished push changes nothing."""
        if self.status in {PushStatus.ACKED, PushStatus.FAILED}:
            return False
        status = PushStatus.ACKED if success else PushStatus.FAILED
        changed = ConfigPush.objects.filter(pk=self.pk, status__in=[PushStatus.PENDING, PushStatus.SENT]).update(
            status=status, acked_at=timezone.now(), error_message="" if success else error_message[:2000]
        )
        if changed:
            metrics.config_pushes(status)
            self.refresh_from_db()
        return bool(changed)
