from django.db import models


class CommandStatus(models.TextChoices):
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


class CommandKind(models.TextChoices):
    COMMAND = "command"
    # "Test connection": the relay connects and logs in to the SSH target, runs nothing, and reports what it saw.
    PROBE = "probe"


class TargetType(models.TextChoices):
    LOCAL = "local"
    SSH = "ssh", "SSH"


class Stream(models.TextChoices):
    STDOUT = "stdout", "stdout"
    STDERR = "stderr", "stderr"
