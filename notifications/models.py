"""Notifications: channels that events are sent to, rules that pick the events, and each delivery attempt.

A channel's webhook secret is sealed like a shared credential (``credentials.crypto``, AES-256-GCM under
``CREDENTIAL_KEYS``, bound to its row) and is never shown, logged or put in an error.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models

from assignments.labels import LabelError, parse_selector
from credentials import crypto
from notifications import guard


class EventKind(models.TextChoices):
    RELAY_LOST = "relay_heartbeat_lost", "Relay lost its heartbeat"
    RELAY_RECOVERED = "relay_recovered", "Relay recovered"
    # Defined for rules now; the detection (heartbeats but no fetches while commands wait) comes later.
    RELAY_NOT_FETCHING = "relay_not_fetching", "Relay stopped fetching commands"
    COMMAND_FAILED = "command_failed", "Command failed or timed out"
    FAILURE_REPEATED = "command_failure_repeated", "Command failed N times in a row"
    BATCH_FINISHED = "batch_finished", "Batch finished"
    SCHEDULED_RUN_MISSED = "scheduled_run_missed", "Scheduled run never started"
    APPROVAL_REQUESTED = "approval_requested", "Approval requested"
    TEST = "test", "Test (sent from a channel)"


RULE_EVENTS = [(value, label) for value, label in EventKind.choices if value != EventKind.TEST]
# Which filters an event can be judged by: the relays it concerns, and the job template it came from.
RELAY_FILTERED = frozenset(EventKind.values) - {EventKind.SCHEDULED_RUN_MISSED, EventKind.TEST}
TEMPLATE_FILTERED = frozenset({EventKind.COMMAND_FAILED, EventKind.FAILURE_REPEATED, EventKind.BATCH_FINISHED,
                               EventKind.SCHEDULED_RUN_MISSED, EventKind.APPROVAL_REQUESTED})
MAX_REPEAT = 100
MIN_SECRET_CHARS = 16


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (signed JSON)"
    SLACK = "slack", "Slack-compatible webhook"
    EMAIL = "email", "Email"


def email_addresses(text: str) -> list[str]:
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


class Channel(models.Model):
    """Where events go: a webhook, a Slack-compatible webhook, or email addresses."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    url = models.URLField(max_length=2000, blank=True, help_text=(
        "Webhook and Slack: http(s) only. Addresses on loopback, private, link-local (cloud metadata), CGNAT and "
        "other non-public networks are refused unless the host is in RELAYHUB_NOTIFY_ALLOWED_HOSTS."))
    email_to = models.TextField(blank=True, verbose_name="email addresses",
                                help_text="Email: addresses separated by commas or new lines.")
    secret_key_id = models.CharField(max_length=64, blank=True, editable=False)
    secret_ciphertext = models.BinaryField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "notification channel"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Channel {self.name!r}>"

    @property
    def _aad(self) -> str:
        return f"relayhub.notification_channel:{self.pk}"

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_key_id)

    def set_secret(self, value: str) -> None:
        self.secret_key_id, self.secret_ciphertext = crypto.seal(value, self._aad)

    def get_secret(self) -> str:
        return crypto.unseal(self.secret_key_id, bytes(self.secret_ciphertext), self._aad)

    def reencrypt(self) -> bool:
        """Re-seal the secret under the primary credential key; True if it changed."""
        if not self.has_secret or self.secret_key_id == crypto.credential_keys().primary_id:
            return False
        self.set_secret(self.get_secret())
        return True

    @property
    def host(self) -> str:
        """What errors and lists name: the URL's host, never its path (a Slack URL's path is its token)."""
        return guard.host_of(self.url) if self.url else ""

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.kind == ChannelKind.EMAIL:
            addresses = email_addresses(self.email_to)
            if not addresses:
                errors["email_to"] = "An email channel needs at least one address."
            for address in addresses:
                try:
                    validate_email(address)
                except ValidationError:
                    errors["email_to"] = f"{address!r} is not an email address."
            if self.url:
                errors["url"] = "An email channel has no URL."
        elif self.kind in (ChannelKind.WEBHOOK, ChannelKind.SLACK):
            if not self.url:
                errors["url"] = "A webhook needs a URL."
            else:
                try:
                    guard.check_url(self.url)
                except guard.Refused as exc:
                    errors["url"] = str(exc)
            if self.email_to.strip():
                errors["email_to"] = "Only email channels have addresses."
            if self.kind == ChannelKind.WEBHOOK and not self.has_secret:
                errors["secret"] = "A webhook channel needs a secret, to sign what it sends."  # nosec B105 - a message
        if errors:
            raise ValidationError(errors)


class Rule(models.Model):
    """Send events of one kind, filtered by relay, labels or job template, to a channel."""

    name = models.CharField(max_length=200)
    event = models.CharField(max_length=32, choices=RULE_EVENTS)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="rules")
    relay = models.ForeignKey("assignments.RelayAssignment", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+", help_text="Only events concerning this relay.")
    selector = models.CharField(max_length=4096, blank=True, help_text=(
        "Only events concerning a relay whose labels match this selector (env=prod, role in (web,api))."))
    template_name = models.CharField(max_length=200, blank=True, verbose_name="job template", help_text=(
        "Only events of commands and batches launched from the job template of this name."))
    threshold = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name="failures in a row", validators=[MinValueValidator(2),
                                                                            MaxValueValidator(MAX_REPEAT)],
        help_text="For “Command failed N times in a row”: N.")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = "notification rule"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            parse_selector(self.selector)
        except LabelError as exc:
            errors["selector"] = str(exc)
        if self.event and self.event not in RELAY_FILTERED:
            for name, value in (("relay", self.relay_id), ("selector", self.selector)):
                if value:
                    errors[name] = "This event concerns no relay: leave it empty."
        if self.template_name and self.event and self.event not in TEMPLATE_FILTERED:
            errors["template_name"] = "This event comes from no job template: leave it empty."
        elif self.template_name:
            from runbooks.models import JobTemplate

            if not JobTemplate.objects.filter(name=self.template_name).exists():
                errors["template_name"] = f"There is no job template named {self.template_name!r}."
        if self.event == EventKind.FAILURE_REPEATED and self.threshold is None:
            errors["threshold"] = "Say how many failures in a row (2 or more)."
        elif self.event != EventKind.FAILURE_REPEATED and self.threshold is not None:
            errors["threshold"] = "Only “Command failed N times in a row” takes a number of failures."
        if errors:
            raise ValidationError(errors)


class Event(models.Model):
    """What happened, as sent: a small JSON payload (never a secret, never command output)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    # What makes it this event and no other (command_failed:42); one event per key, however often it is raised.
    key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "notification event"

    def __str__(self) -> str:
        return self.payload.get("summary") or self.kind


class DeliveryStatus(models.TextChoices):
    SUCCEEDED = "succeeded"
    RETRYING = "retrying", "Failed, retry scheduled"
    FAILED = "failed", "Failed, given up"
    REFUSED = "refused", "Refused (address not allowed)"
    SKIPPED = "skipped"


class Delivery(models.Model):
    """One attempt to send an event to a channel."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, null=True, on_delete=models.SET_NULL, related_name="deliveries")
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name="HTTP status")
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "notification delivery"
        verbose_name_plural = "notification deliveries"

    def __str__(self) -> str:
        return f"{self.event.kind} to {self.channel or 'a deleted channel'}, attempt {self.attempt}"
