from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from relayhub import crypto


class CredentialType(models.TextChoices):
    SSH_KEY = "ssh_key"
    PASSWORD = "password"  # nosec B105 - a credential type name
    API_KEY = "api_key"


class StorageMode(models.TextChoices):
    RELAY_ONLY = "relay_only"
    SHARED = "shared"


class CredentialInventoryItem(models.Model):
    """Metadata a relay reports about a credential it holds; never the value."""

    relay = models.ForeignKey("assignments.RelayAssignment", on_delete=models.CASCADE, related_name="inventory")
    credential_name = models.CharField(max_length=200)
    credential_type = models.CharField(max_length=10, choices=CredentialType.choices)
    target_host = models.CharField(max_length=255, blank=True)
    storage_mode = models.CharField(max_length=10, choices=StorageMode.choices)
    last_updated_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField()

    class Meta:
        ordering = ["credential_name"]
        constraints = [
            models.UniqueConstraint(fields=["relay", "credential_name"], name="unique_inventory_name"),
        ]

    def __str__(self) -> str:
        return self.credential_name


class SharedCredential(models.Model):
    """A credential kept on the hub, AES-GCM encrypted and bound to its row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    credential_type = models.CharField(max_length=10, choices=CredentialType.choices)
    target_host = models.CharField(max_length=255, blank=True)
    key_id = models.CharField(max_length=64, editable=False)
    ciphertext = models.BinaryField(editable=False)
    assigned_relays = models.ManyToManyField(
        "assignments.RelayAssignment", blank=True, related_name="shared_credentials"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<SharedCredential {self.name!r}>"

    @property
    def _aad(self) -> str:
        return f"relayhub.shared_credential:{self.pk}"

    def set_value(self, value: str) -> None:
        self.key_id, self.ciphertext = crypto.seal(value, self._aad)

    def get_value(self) -> str:
        return crypto.unseal(self.key_id, bytes(self.ciphertext), self._aad)

    def reencrypt(self) -> bool:
        """Re-seal under the primary key; True if it changed."""
        if self.key_id == crypto.credential_keys().primary_id:
            return False
        self.set_value(self.get_value())
        return True

    def encrypted_for_secret(self, transport_secret: str) -> str:
        return crypto.encrypt_for_relay(transport_secret, self.get_value())
