"""Agent releases: signed wheels of relay_agent that relays may update themselves to."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty

from assignments.labels import LabelError, parse_selector

VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}\Z")


class _ReleaseStorage(LazyObject):
    """STORAGES["agent_releases"], looked up when first used (and again after a test changes STORAGES)."""

    def _setup(self) -> None:
        self._wrapped = storages["agent_releases"]


_storage = _ReleaseStorage()


def release_storage():
    return _storage


@receiver(setting_changed)
def _storages_changed(setting: str, **kwargs) -> None:
    if setting == "STORAGES":
        _storage._wrapped = empty


class AgentRelease(models.Model):
    version = models.CharField(max_length=64, unique=True)
    # The wheel, as uploaded or built, in the private "agent_releases" storage.
    wheel = models.FileField(storage=release_storage, upload_to="wheels/", max_length=300, editable=False)
    filename = models.CharField(max_length=200, editable=False)
    size = models.PositiveBigIntegerField(default=0, editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    # Base64 Ed25519 signature of relayhub.relay.release_key.signed_message(version, sha256).
    signature = models.CharField(max_length=200, editable=False)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "agent release"

    def __str__(self) -> str:
        return f"relay-agent {self.version}"

    def metadata(self) -> dict:
        """What an update_agent command carries (commands.agent_update)."""
        return {"version": self.version, "sha256": self.sha256, "signature": self.signature,
                "filename": self.filename, "size": self.size}


class AgentVersionPin(models.Model):
    """Relays whose labels match ``selector`` take updates to ``version`` only, as a relay's own pin does.

    New relays that join the label are pinned too. Changing pins needs the model's permissions (superusers
    have them); a relay's own pin (``RelayAssignment.agent_version_pin``) needs ``configure_relay`` on it."""

    selector = models.CharField(max_length=4096, help_text='the relays it pins, e.g. "env=prod" or "site in (a,b)"')
    version = models.CharField(max_length=64, help_text="the only relay agent version these relays may update to")
    note = models.CharField(max_length=200, blank=True, help_text="why, for whoever meets the refusal")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["selector"]
        verbose_name = "agent version pin by label"
        verbose_name_plural = "agent version pins by label"

    def __str__(self) -> str:
        return f"{self.selector} → {self.version}"

    def clean(self) -> None:
        try:
            parsed = parse_selector(self.selector)
        except LabelError as exc:
            raise ValidationError({"selector": str(exc)}) from None
        if parsed.is_empty:
            raise ValidationError({"selector": "an empty selector would pin every relay: say which"})
        if not VERSION.match(self.version or ""):
            raise ValidationError({"version": "a version such as 1.4.0"})
