"""The audit trail: an append-only record of what operators did, never with a secret value in it."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    COMMAND_QUEUE = "command.queue", "Command queued"
    COMMAND_CANCEL = "command.cancel", "Command cancelled"
    COMMAND_RERUN = "command.rerun", "Command rerun"
    BATCH_QUEUE = "batch.queue", "Batch queued"
    BATCH_CANCEL = "batch.cancel", "Batch stopped"
    TEMPLATE_LAUNCH = "template.launch", "Template launched"
    APPROVAL_APPROVE = "approval.approve", "Approved"
    APPROVAL_REJECT = "approval.reject", "Rejected"
    KEY_ISSUE = "key.issue", "Relay key issued"
    KEY_REVOKE = "key.revoke", "Relay key revoked"
    TOKEN_ISSUE = "token.issue", "API token issued"
    TOKEN_REVOKE = "token.revoke", "API token revoked"
    CREDENTIAL_CREATE = "credential.create", "Credential created"
    CREDENTIAL_CHANGE = "credential.change", "Credential changed"
    CREDENTIAL_DELETE = "credential.delete", "Credential deleted"
    CONFIG_PUSH = "config.push", "Config pushed"
    PERMISSION_CHANGE = "permission.change", "Permission changed"
    LOGIN = "auth.login", "Signed in"
    LOGOUT = "auth.logout", "Signed out"
    LOGIN_FAILED = "auth.login_failed", "Sign-in failed"
    AGENT_RELEASE = "agent_release.publish", "Agent release published"


class Source(models.TextChoices):
    ADMIN = "admin", "Admin"
    API = "api", "REST API"
    CLI = "cli", "relay_exec / manage.py"
    PYTHON = "python", "exec() from Python"
    SCHEDULE = "schedule", "Schedule (beat)"
    SYSTEM = "system", "The hub itself"


class AppendOnly(models.QuerySet):
    """Entries are written once: no bulk update or delete through the ORM."""

    def update(self, **kwargs):
        raise PermissionError("the audit trail is append-only")

    def delete(self):
        raise PermissionError("the audit trail is append-only")


class AuditEntry(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    # The user, kept by name as well: the entry outlives the account, and deleting one never rewrites it.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                              related_name="+", db_constraint=False)
    actor_name = models.CharField(max_length=200, blank=True, db_index=True,
                                  help_text="The username; for the shell, the OS user and what it maps to.")
    source = models.CharField(max_length=10, choices=Source.choices)
    address = models.GenericIPAddressField(null=True, blank=True, help_text="The client's address, for requests.")
    object_type = models.CharField(max_length=40, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="What was done; never a secret value.")

    objects = AppendOnly.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"
        indexes = [models.Index(fields=["object_type", "object_id", "-at"])]

    def __str__(self) -> str:
        who = self.actor_name or "no one"
        what = f" {self.object_type} {self.object_repr or self.object_id}".rstrip()
        return f"{who}: {self.get_action_display()}{what}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("the audit trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the audit trail is append-only")

    def as_record(self) -> dict:
        """One JSON line of the export, and what syslog gets."""
        return {"id": self.pk, "at": self.at.isoformat(), "action": self.action, "actor": self.actor_name,
                "actor_id": self.actor_id, "source": self.source, "address": self.address,
                "object_type": self.object_type, "object_id": self.object_id, "object": self.object_repr,
                "detail": self.detail}
