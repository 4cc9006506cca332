from django.db import models


class CommandStatus(models.TextChoices):
    # Held back until a second person approves it (commands.approvals); never claimable, not in flight.
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PENDING = "pending"
    CLAIMED = "claimed"
    EXECUTING = "executing"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout", "Timed out"
    CANCELLED = "cancelled"
    # Never handed to a relay: none was enabled and online for its machine when a batch reached it.
    UNDELIVERED = "undelivered"

    @classmethod
    def active(cls) -> frozenset[str]:
        return frozenset({cls.CLAIMED, cls.EXECUTING})

    @classmethod
    def terminal(cls) -> frozenset[str]:
        return frozenset({cls.COMPLETED, cls.FAILED, cls.TIMEOUT, cls.CANCELLED, cls.UNDELIVERED})


class ApprovalState(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # The command or batch was cancelled before anyone decided.
    WITHDRAWN = "withdrawn"


class CommandKind(models.TextChoices):
    COMMAND = "command"
    # "Test connection": the relay connects and logs in to the SSH target, runs nothing, and reports what it saw.
    PROBE = "probe"
    # Install, remove or upgrade named packages with the target's package manager (commands.packages).
    UPDATE_PACKAGE = "update_package", "Package update"
    # Replace the relay agent itself with a signed release (commands.agent_update).
    UPDATE_AGENT = "update_agent", "Agent update"


class TargetType(models.TextChoices):
    LOCAL = "local"
    SSH = "ssh", "SSH"


class Stream(models.TextChoices):
    STDOUT = "stdout", "stdout"
    STDERR = "stderr", "stderr"
