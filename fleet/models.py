"""SSH targets: the machines behind a relay that it reaches over SSH, with labels to select them by."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from assignments.labels import format_labels, validate_labels
from configpush.payloads import HOST_KEY_RE


def parse_host_keys(text: str) -> list[str]:
    """Pinned host keys, one OpenSSH public key line each ("ssh-ed25519 AAAA... [comment]")."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not HOST_KEY_RE.match(line):
            raise ValidationError(f"host key line {number} is not an OpenSSH public key line "
                                  "('ssh-ed25519 AAAA...')")
        keys.append(" ".join(line.split()[:2]))
    return list(dict.fromkeys(keys))


def validate_host_keys(text: str) -> None:
    parse_host_keys(text)


class SSHTarget(models.Model):
    """A host a relay reaches over SSH. Its relays learn of it through an ``ssh_targets`` push."""

    name = models.CharField(max_length=200, unique=True,
                            help_text="How the target is called in output and selectors' results, e.g. web-01.")
    host = models.CharField(max_length=255, help_text="Host name or IP address, as the relay reaches it.")
    port = models.PositiveIntegerField(default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)])
    username = models.CharField(max_length=100, blank=True, help_text="SSH login user.")
    relays = models.ManyToManyField("assignments.RelayAssignment", related_name="ssh_targets",
                                    help_text="The relays that reach this target.")
    credential_name = models.CharField(
        max_length=200, blank=True,
        help_text="The credential the relays log in with: a name in their inventory, or a shared credential's name.")
    host_keys = models.TextField(blank=True, validators=[validate_host_keys],
                                 help_text="Pinned host keys, one OpenSSH public key line each.")
    labels = models.JSONField(default=dict, blank=True, validators=[validate_labels])
    enabled = models.BooleanField(default=True, help_text="Disabled targets are not pushed to relays nor selected.")
    last_probe = models.ForeignKey("commands.Command", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SSH target"

    def __str__(self) -> str:
        return self.name

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def label_text(self) -> str:
        return format_labels(self.labels or {})

    def pinned_keys(self) -> list[str]:
        try:
            return parse_host_keys(self.host_keys)
        except ValidationError:
            return []
