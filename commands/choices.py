from django.db import models


class CommandStatus(models.TextChoices):
    PENDING = "pending"
    CLAIMED = "claimed"
    EXECUTING = "executing"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    @classmethod
    def active(cls) -> frozenset[str]:
        return frozenset({cls.CLAIMED, cls.EXECUTING})

    @classmethod
    def terminal(cls) -> frozenset[str]:
        return frozenset({cls.COMPLETED, cls.FAILED, cls.TIMEOUT, cls.CANCELLED})


class TargetType(models.TextChoices):
    LOCAL = "local"
    SSH = "ssh"


class Stream(models.TextChoices):
    STDOUT = "stdout"
    STDERR = "stderr"
