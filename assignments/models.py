from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from assignments import keys, labels, transport
from audit import trail
from audit.models import Action
from relayhub.web import metrics


class Capability(models.TextChoices):
    SSH = "ssh", "SSH"
    LOCAL_CMD = "local_cmd", "Local commands"
    PERF_METRICS = "perf_metrics", "Performance metrics"
    RUN_OPTIONS = "run_options", "Working directory, environment, run-as and scripts"
    PACKAGES = "packages", "Package commands (apt-get, dnf, yum, apk, zypper)"
    SELF_UPDATE = "self_update", "Signed self-update (update_agent)"


class ConnectionEvent(models.TextChoices):
    CONNECTED = "connected"
    HEARTBEAT_LOST = "heartbeat_lost", "Heartbeat lost"


class RelayApiKey(models.Model):
    """A relay's key: only the lookup and a SHA-256 of the secret are kept."""

    lookup = models.CharField(max_length=keys.LOOKUP_LEN, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "relay API key"

    def __str__(self) -> str:
        return f"rly_{self.lookup}_…"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            RelayApiKey.objects.filter(pk=self.pk, revoked_at=None).update(revoked_at=self.revoked_at)

    def note_use(self, now: datetime) -> None:
        """Write ``last_used_at`` at most once a minute."""
        every = timedelta(seconds=settings.RELAYHUB["KEY_LAST_USED_WRITE_S"])
        if self.last_used_at is None or now - self.last_used_at >= every:
            self.last_used_at = now
            RelayApiKey.objects.filter(pk=self.pk).update(last_used_at=now)


class IssuedKey:
    """What an operator sees once: never stored, never logged."""

    def __init__(self, relay: RelayAssignment, api_key: str) -> None:
        self.relay = relay
        self.api_key = api_key
        self.transport_secret = relay.transport_secret()

    def __repr__(self) -> str:
        return f"IssuedKey(relay={self.relay.pk})"

    def as_json(self) -> dict[str, str]:
        return {
            "assignmentId": str(self.relay.pk),
            "machineId": self.relay.machine_id,
            "name": self.relay.name,
            "apiKey": self.api_key,
            "transportSecret": self.transport_secret,
        }


class RelayAssignment(models.Model):
    """A relay: one API key serving one machine id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_key = models.OneToOneField(
        RelayApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignment"
    )
    machine_id = models.CharField(max_length=200, db_index=True)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    # Four eyes: commands for this relay's machine wait in awaiting_approval until another user approves them.
    requires_approval = models.BooleanField(
        default=False, help_text="Commands for this relay's machine wait until a second person approves them "
                                 "(approve_command on the relay). Only configurers of the relay change this.")
    # An update_agent command to any other version is refused (400) while this is set.
    agent_version_pin = models.CharField(
        max_length=64, blank=True, verbose_name="agent version pin",
        help_text="Only updates to this relay agent version are allowed; empty: any release. Only configurers of "
                  "the relay change this.")
    labels = models.JSONField(default=dict, blank=True, validators=[labels.validate_labels],
                              help_text="key=value labels that selectors pick relays by, e.g. env=prod, site=lab")
    transport_key_id = models.CharField(max_length=64, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "relay"
        ordering = ["machine_id", "name"]
        permissions = [
            ("view_relay", "Can see the relay and its commands"),
            ("run_command", "Can run commands on the relay"),
            ("configure_relay", "Can change what the relay trusts and allows (config pushes, credentials)"),
            ("approve_command", "Can approve commands on this relay"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.machine_id})"

    @classmethod
    def issue(cls, *, machine_id: str, name: str, created_by=None) -> IssuedKey:
        with transaction.atomic():
            relay = cls(machine_id=machine_id, name=name, created_by=created_by)
            issued = relay._attach_new_key(save=True)
            RelayStatus.objects.create(relay=relay)
            trail.record(Action.KEY_ISSUE, actor=created_by, obj=relay,
                         detail={"machine": machine_id, "key_number": relay.api_key_id, "new_relay": True})
        return issued

    def reissue_key(self) -> IssuedKey:
        """Revoke the current key and attach a new one (with a new transport secret)."""
        with transaction.atomic():
            old = self.api_key
            issued = self._attach_new_key(save=True)
            if old is not None:
                old.revoke()
            trail.record(Action.KEY_ISSUE, obj=self, detail={"machine": self.machine_id,
                                                             "key_number": self.api_key_id,
                                                             "replaces_key_number": getattr(old, "pk", None)})
        return issued

    def _attach_new_key(self, *, save: bool) -> IssuedKey:
        full, parsed = keys.generate()
        self.api_key = RelayApiKey.objects.create(lookup=parsed.lookup, secret_hash=keys.hash_secret(parsed.secret))
        self.transport_key_id = transport.transport_keys().primary_id
        if save:
            self.save()
        return IssuedKey(self, full)

    def transport_secret(self) -> str:
        lookup = self.api_key.lookup if self.api_key else ""
        return transport.derive_transport_secret(self.transport_key_id, str(self.pk), lookup)

    def revoke_key(self) -> None:
        if self.api_key is not None and not self.api_key.is_revoked:
            self.api_key.revoke()
            trail.record(Action.KEY_REVOKE, obj=self, detail={"machine": self.machine_id,
                                                              "key_number": self.api_key_id})

    @property
    def is_online(self) -> bool:
        status = getattr(self, "status", None)
        return bool(status and status.is_online)

    def record_fetch(self, now: datetime) -> None:
        """It asked for commands (list, next or claim): see RelayStatus.record_fetch."""
        status = getattr(self, "status", None)  # none before its first sign of life
        if status is not None:
            status.record_fetch(now)


def online_since() -> datetime:
    """Relays with a sign of life after this moment are online."""
    return timezone.now() - timedelta(seconds=settings.RELAYHUB["ONLINE_THRESHOLD_S"])


class RelayStatus(models.Model):
    """What a relay last told us about itself. Liveness is derived, not stored."""

    relay = models.OneToOneField(RelayAssignment, primary_key=True, on_delete=models.CASCADE, related_name="status")
    capabilities = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    version = models.CharField(max_length=100, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    platform = models.CharField(max_length=100, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_connection_event = models.CharField(max_length=20, choices=ConnectionEvent.choices, blank=True)
    # Set while config pushes wait for the relay to fetch them: its next long-poll says so (configPending).
    config_pending_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When it last asked for commands (list, next or claim), written at most every FETCH_WRITE_S; and since when
    # it has sent signs of life without fetching while commands waited for its machine (a sweep sets it).
    last_fetch_at = models.DateTimeField(null=True, blank=True, editable=False)
    not_fetching_since = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "relay statuses"

    def __str__(self) -> str:
        return f"status of {self.relay_id}"

    @property
    def is_online(self) -> bool:
        return self.last_heartbeat_at is not None and self.last_heartbeat_at > online_since()

    @staticmethod
    def note_config_pending(relay_id: object, now: datetime) -> None:
        RelayStatus.objects.filter(relay_id=relay_id).update(config_pending_at=now)

    @staticmethod
    def note_config_fetched(relay_id: object, fetch_began: datetime) -> None:
        """Clear the mark, unless a push was queued after the fetch began."""
        RelayStatus.objects.filter(relay_id=relay_id, config_pending_at__lte=fetch_began).update(config_pending_at=None)

    def record_fetch(self, now: datetime) -> None:
        """Note that the relay asked for commands, writing at most every FETCH_WRITE_S; it is fetching again."""
        every = timedelta(seconds=settings.RELAYHUB["FETCH_WRITE_S"])
        if self.last_fetch_at and now - self.last_fetch_at < every and self.not_fetching_since is None:
            return
        self.last_fetch_at, self.not_fetching_since = now, None
        RelayStatus.objects.filter(pk=self.pk).update(last_fetch_at=now, not_fetching_since=None)

    @property
    def is_not_fetching(self) -> bool:
        """Online, yet it has not asked for commands while some waited for its machine (see commands.fetching)."""
        return self.not_fetching_since is not None and self.is_online

    def record_sign_of_life(self, now: datetime, *, force: bool = False) -> None:
        """Note that the relay is alive, writing at most every few seconds."""
        every = timedelta(seconds=settings.RELAYHUB["SIGN_OF_LIFE_WRITE_S"])
        if not force and self.last_heartbeat_at and now - self.last_heartbeat_at < every:
            return
        self.last_heartbeat_at = now
        RelayStatus.objects.filter(pk=self.pk).update(last_heartbeat_at=now)
        RelayAssignment.objects.filter(pk=self.pk).update(last_seen_at=now)
        if self.last_connection_event != ConnectionEvent.CONNECTED:
            self.record_event(ConnectionEvent.CONNECTED, now)

    def record_event(self, kind: str, now: datetime, reason: str = "", *, silent_since: datetime | None = None) -> bool:
        """Flip ``last_connection_event``; only the caller that flips it writes the event row.

        ``silent_since`` makes the flip conditional on no sign of life since then,
        so a heartbeat racing the sweeper is never overruled.
        """
        rows = RelayStatus.objects.filter(pk=self.pk).exclude(last_connection_event=kind)
        if silent_since is not None:
            rows = rows.filter(last_heartbeat_at__lt=silent_since)
        flipped = rows.update(last_connection_event=kind)
        self.last_connection_event = kind
        if flipped:
            RelayEvent.objects.create(relay_id=self.pk, kind=kind, reason=reason, created_at=now)
            metrics.relay_event(kind)
        return bool(flipped)


class RelayEvent(models.Model):
    """Append-only log of connection changes, like Healthchecks' Flip rows."""

    relay = models.ForeignKey(RelayAssignment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=ConnectionEvent.choices)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class MetricSample(models.Model):
    """History of reported metrics, pruned by the retention sweep."""

    relay = models.ForeignKey(RelayAssignment, on_delete=models.CASCADE, related_name="metric_samples")
    created_at = models.DateTimeField(default=timezone.now)
    metrics = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["relay", "created_at"])]
