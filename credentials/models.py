from __future__ import annotations

import uuid

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from credentials import crypto


class CredentialType(models.TextChoices):
    SSH_KEY = "ssh_key", "SSH key"
    PASSWORD = "password"  # nosec B105 - a credential type name
    API_KEY = "api_key", "API key"


SSH_TYPES = (CredentialType.SSH_KEY, CredentialType.PASSWORD)


class StorageMode(models.TextChoices):
    RELAY_ONLY = "relay_only", "On the relay only"
    SHARED = "shared"


_HOST = re.compile(r"[A-Za-z0-9._-]+\Z", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}\Z", re.ASCII)
TARGET_HOST_HELP = ("The only SSH target this credential is offered to: host (any port), host:port or "
                    "[IPv6]:port. A credential bound to no host is offered to none.")


def parse_target_host(value: str) -> tuple[str, int | None]:
    """``host``, ``host:port`` or ``[ipv6]:port`` (or ``[ipv6]``), ports 1-65535 in ASCII digits: (host, port)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        ok = bool(re.fullmatch(r"[0-9A-Fa-f:.]+", host, re.ASCII)) and ":" in host
        port = rest[1:] if rest.startswith(":") else (None if rest == "" else "x")
    else:
        host, _, port_text = value.partition(":")
        ok, port = bool(_HOST.match(host)), (port_text if ":" in value else None)
    if port is not None:
        ok = ok and bool(_PORT.match(port)) and 1 <= int(port) <= 65535
    if not ok:
        raise ValidationError("target host must be host, host:port or [IPv6]:port, with a port from 1 to 65535")
    return host.lower(), int(port) if port is not None else None


def validate_target_host(value: str) -> None:
    parse_target_host(value)


def binds(target_host: str, host: str, port: int) -> bool:
    """Whether a credential bound to ``target_host`` is offered to ``host:port`` (the agent's rule)."""
    try:
        bound_host, bound_port = parse_target_host(target_host)
    except ValidationError:
        return False
    return bound_host == host.lower() and bound_port in (None, port)


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
    target_host = models.CharField(max_length=255, blank=True, validators=[validate_target_host],
                                   help_text=TARGET_HOST_HELP)
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
