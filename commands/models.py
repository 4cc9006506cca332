from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from assignments.models import RelayAssignment
from commands import audit_events, notify, queue_sql, secrets
from commands.approval_model import Approval, Need, needed_for
from commands.choices import ApprovalState, CommandKind, CommandStatus, Stream, TargetType
from commands.agent_update import AgentUpdateModel
from commands.packages import PackagesModel
from commands.run_options import RunOptionsModel
from commands.signals import batch_command_ended, command_ended
from relayhub.web import metrics
from relayhub.web.fields import epoch_ms


# A batch's max_concurrency and max_errors count targets; beyond this they mean "no limit" anyway.
MAX_BATCH_TARGETS = 100_000


class IllegalTransition(Exception):
    pass


def _live_relay(relay: Any) -> models.QuerySet:
    return RelayAssignment.objects.filter(pk=relay.pk, enabled=True, api_key__revoked_at__isnull=True)


class CommandBatch(RunOptionsModel, AgentUpdateModel):
    """One command fanned out to many machines or SSH targets, dispatched ``max_concurrency`` at a time.

    ``destinations`` lists where each copy goes, in order: ``{"machine_id"}`` and, for an SSH target,
    ``name``, ``target_host``, ``target_port`` and ``target_username``. ``machine_ids`` are their machines.
    """

    machine_ids = models.JSONField(default=list)
    destinations = models.JSONField(default=list)
    selector = models.CharField(max_length=4096, blank=True)
    command = models.TextField(default="")
    target_type = models.CharField(max_length=10, choices=TargetType.choices, default=TargetType.LOCAL)
    target_host = models.CharField(max_length=255, blank=True)
    target_port = models.PositiveIntegerField(null=True, blank=True)
    target_username = models.CharField(max_length=100, blank=True)
    timeout_ms = models.PositiveIntegerField(default=30_000)
    priority = models.PositiveSmallIntegerField(default=5)
    max_concurrency = models.PositiveIntegerField(null=True, blank=True, validators=[
        MinValueValidator(1), MaxValueValidator(MAX_BATCH_TARGETS)])
    max_errors = models.PositiveIntegerField(null=True, blank=True, validators=[MaxValueValidator(MAX_BATCH_TARGETS)])
    # Copies for machines with no relay online wait in the queue instead of being recorded undelivered.
    queue_if_offline = models.BooleanField(default=False)
    # Set once failures pass max_errors: targets not yet started are cancelled.
    stopped = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "command batches"

    def __str__(self) -> str:
        return f"batch {self.pk}"


class CommandQuerySet(models.QuerySet):
    def pending_for(self, machine_id: str) -> CommandQuerySet:
        return self.filter(machine_id=machine_id, status=CommandStatus.PENDING).order_by("-priority", "created_at", "id")


class Command(RunOptionsModel, PackagesModel, AgentUpdateModel):
    """A shell command queued for a machine. Its status changes only through its methods."""

    machine_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=CommandKind.choices, default=CommandKind.COMMAND, editable=False)
    target_type = models.CharField(max_length=10, choices=TargetType.choices, default=TargetType.LOCAL)
    target_host = models.CharField(max_length=255, blank=True)
    target_port = models.PositiveIntegerField(null=True, blank=True,
                                              validators=[MinValueValidator(1), MaxValueValidator(65535)])
    # The SSH target's name, by which its output is labelled (web-01 | ...).
    target_name = models.CharField(max_length=200, blank=True, editable=False)
    target_username = models.CharField(max_length=100, blank=True)
    command = models.TextField()
    timeout_ms = models.PositiveIntegerField(default=30_000, validators=[MinValueValidator(1)])
    priority = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(10)])
    status = models.CharField(
        max_length=20, choices=CommandStatus.choices, default=CommandStatus.PENDING, editable=False
    )
    attempt = models.PositiveIntegerField(default=0, editable=False)
    claimed_by = models.ForeignKey(
        "assignments.RelayAssignment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="claimed_commands",
        editable=False,
    )
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The agent run (its `session`) whose claim also started the command; only that run gets it again.
    claim_session = models.CharField(max_length=64, blank=True, default="", editable=False)
    # claimed_at + timeout_ms: when the relay's time to run it is up.
    deadline_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    output = models.TextField(blank=True, editable=False)
    stderr = models.TextField(blank=True, editable=False)
    exit_code = models.IntegerField(null=True, blank=True, editable=False)
    error = models.TextField(blank=True, editable=False)
    duration_ms = models.PositiveIntegerField(null=True, blank=True, editable=False)
    output_truncated = models.BooleanField(default=False, editable=False)
    cancel_requested = models.BooleanField(default=False, editable=False)
    # Fingerprint of the accepted result, so that an identical resend is recognised.
    result_digest = models.CharField(max_length=64, blank=True, editable=False)
    batch = models.ForeignKey(CommandBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="commands")
    # Which of the batch's destinations this copy serves.
    batch_index = models.PositiveIntegerField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CommandQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["machine_id", "status", "-priority", "created_at"], name="command_queue_idx"),
            models.Index(fields=["status", "updated_at"], name="command_status_idx"),
            models.Index(fields=["status", "deadline_at"], name="command_deadline_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.command[:60]}"

    def save(self, *args: Any, approval: Need | None = None, **kwargs: Any) -> None:
        """A new command of its own passes the approval gate (``commands.approvals``): it is saved
        ``awaiting_approval``, with its pending Approval, when an enabled relay of its machine requires approval
        or ``approval`` asks for it. A batch's copies pass as their batch did; a probe runs nothing."""
        adding = self._state.adding
        need = None
        if adding and self.status == CommandStatus.PENDING and self.batch_id is None \
                and self.kind != CommandKind.PROBE:
            need = needed_for([self.machine_id], approval)
        elif approval is not None:
            raise ValueError("only a new, pending command of its own can be held for approval")
        if need is not None:
            self.status = CommandStatus.AWAITING_APPROVAL
            with transaction.atomic():
                super().save(*args, **kwargs)
                Approval.open(need, command=self, requested_by=self.created_by)
        else:
            super().save(*args, **kwargs)
        if not adding:
            return
        if self.status == CommandStatus.PENDING:
            self._wake_relays()  # first: the relay claims while the audit entry is written
        elif self.is_terminal:  # recorded as it ended, e.g. undelivered
            metrics.commands_finished([(self.status, self.claimed_at)], self.completed_at or self.created_at)
        if self.batch_id is None and self.kind != CommandKind.PROBE:
            audit_events.command_queued(self)
        metrics.command_queued()

    def _wake_relays(self, *also: str) -> None:
        """Once committed, wake the relays waiting on its machine (and whoever waits on ``also``)."""
        topics = [notify.machine_topic(self.machine_id), *also]
        transaction.on_commit(lambda: notify.publish_many(topics))

    @property
    def is_terminal(self) -> bool:
        return self.status in CommandStatus.terminal()

    # -- state machine -------------------------------------------------------
    # Each move is a conditional UPDATE whose row count decides who won, so any
    # number of web processes, relays and sweepers can race safely.

    def _move(self, sources: set[str] | frozenset[str], target: str | None = None, *, where: dict | None = None,
              by_relay: Any = None, **changes: Any) -> bool:
        """One conditional UPDATE; a move made ``by_relay`` happens only while that relay is enabled and unrevoked."""
        changes["updated_at"] = timezone.now()
        if target is not None:
            changes["status"] = target
        rows = Command.objects.filter(pk=self.pk, status__in=sources, **(where or {}))
        if by_relay is not None:
            rows = rows.filter(models.Exists(_live_relay(by_relay)))
        moved = rows.update(**changes)
        if moved:
            computed = [name for name, value in changes.items() if hasattr(value, "resolve_expression")]
            for name, value in changes.items():
                if name not in computed:
                    setattr(self, name, value)
            if computed:
                self.refresh_from_db(fields=computed)
            if self.is_terminal:
                self._ended((self.pk, self.batch_id, self.status))
                metrics.commands_finished([(self.status, self.claimed_at)], changes["updated_at"])
        return moved == 1

    @staticmethod
    def _ended(*ended: tuple[int, int | None, str]) -> None:
        """Once committed, wake whoever waits on these (pk, batch_id, status) commands or on their batches, move
        the batches on, and tell ``command_ended``'s receivers (which must not fail the caller: robust)."""
        if not ended:
            return
        batch_ids = list(dict.fromkeys(batch_id for _, batch_id, _ in ended if batch_id is not None))
        topics = [notify.command_topic(pk) for pk, _, _ in ended] + [notify.batch_topic(pk) for pk in batch_ids]
        transaction.on_commit(lambda: notify.publish_many(topics))
        for batch_id in batch_ids:
            transaction.on_commit(
                lambda batch_id=batch_id: batch_command_ended.send(sender=CommandBatch, batch_id=batch_id))
        statuses = [(pk, status) for pk, _, status in ended]
        transaction.on_commit(lambda: command_ended.send(sender=Command, ended=statuses), robust=True)

    def _refuse(self, action: str) -> IllegalTransition:
        self.refresh_from_db(fields=["status", "claimed_by", "attempt"])
        return IllegalTransition(f"cannot {action} a command that is {self.status}")

    def claim(self, relay: Any) -> bool:
        """Try to claim a pending command; False when another claimer won."""
        now = timezone.now()
        claimed = self._move(
            {CommandStatus.PENDING},
            CommandStatus.CLAIMED,
            where={"machine_id": relay.machine_id},
            by_relay=relay,
            claimed_by=relay,
            claimed_at=now,
            deadline_at=now + timedelta(milliseconds=self.timeout_ms),
            attempt=F("attempt") + 1,
        )
        if claimed:
            metrics.commands_claimed([(now - self.created_at).total_seconds()])
        return claimed

    @classmethod
    def claim_next(cls, relay: Any, limit: int, holding: Iterable[int] = (), session: str = "") -> list[Command]:
        """The relay's claimed-but-never-started commands, then up to ``limit`` new claims, best first.

        A claim whose answer was lost (the hub died mid-response, the agent
        restarted) is handed out again: the agent announces ``started`` before
        it runs anything, so a command still only claimed has not run. Those
        in ``holding`` the relay says it has already, and are not handed out again.

        With a ``session`` (one run of the agent), the claim starts the command
        too, saving the agent its ``started`` request. Such a command is handed
        out again only to the same session, which says in ``holding`` everything
        it has, running or finished but unacknowledged: a command missing from
        it never reached that run. Another run (a restarted agent) never gets it.
        On Postgres, rows locked by a concurrent claimer are skipped rather than
        waited for; SQLite runs the claiming UPDATE under its write lock.
        """
        now = timezone.now()
        held = queue_sql.redeliver_held(cls, relay, limit, list(holding), now, session)
        if len(held) >= limit:
            return held
        claimed = queue_sql.claim_new(cls, relay, limit - len(held), now, session)
        metrics.commands_claimed((now - command.created_at).total_seconds() for command in claimed)
        return held + claimed

    @classmethod
    def start_claimed(cls, relay: Any, items: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bool]:
        """``start`` in one statement for the usual case: ``{(pk, attempt): cancel_requested}`` of those it moved."""
        return queue_sql.start_claimed(cls, relay, items, timezone.now())

    @classmethod
    def finish_claimed(cls, relay: Any, items: Sequence[tuple[int, int, dict[str, Any]]]) -> set[tuple[int, int]]:
        """``finish`` in one statement for the usual case: of the ``(pk, attempt, result)``, the (pk, attempt)
        it moved (``finish`` judges the rest). No pk may come twice."""
        for _, _, result in items:
            if result["status"] not in CommandStatus.terminal():
                raise IllegalTransition(f"{result['status']} is not a final status")
        now = timezone.now()
        with transaction.atomic():
            moved = queue_sql.finish_claimed(cls, relay, items, now)
            # Rare: a template's secret reached the command; mask it out before anyone can read the row.
            for (pk, _), (_, _, references) in moved.items():
                if references:
                    cls._mask_secrets(pk, references)
        statuses = {pk: result["status"] for pk, _, result in items}
        cls._ended(*((pk, batch_id, statuses[pk]) for (pk, _), (batch_id, _, _) in moved.items()))
        metrics.commands_finished(((statuses[pk], claimed_at) for (pk, _), (_, claimed_at, _) in moved.items()), now)
        return set(moved)

    @classmethod
    def _mask_secrets(cls, pk: int, references: dict[str, str]) -> None:
        values = secrets.resolve(references).values()
        stored = cls.objects.filter(pk=pk).values("output", "stderr", "error").first() or {}
        cls.objects.filter(pk=pk).update(**{name: secrets.mask(text, values) for name, text in stored.items()})

    def start(self, relay: Any, attempt: int) -> None:
        if self.status == CommandStatus.EXECUTING and self.claimed_by_id == relay.pk and self.attempt == attempt:
            return
        if not self._move({CommandStatus.CLAIMED}, CommandStatus.EXECUTING,
                          where={"claimed_by": relay, "attempt": attempt}, by_relay=relay, started_at=timezone.now()):
            raise self._refuse("start")

    def finish(self, relay: Any, attempt: int, *, status: str, **result: Any) -> None:
        if status not in CommandStatus.terminal():
            raise IllegalTransition(f"{status} is not a final status")
        if self.secret_environment:
            values = secrets.resolve(self.secret_environment).values()
            result.update({name: secrets.mask(result[name], values) for name in ("output", "stderr", "error")
                           if isinstance(result.get(name), str)})
        if not self._move(CommandStatus.active(), status, where={"claimed_by": relay, "attempt": attempt},
                          by_relay=relay, completed_at=timezone.now(), **result):
            raise self._refuse("finish")

    def withdraw(self) -> bool:
        """Cancel only if no relay has claimed it yet; one awaiting approval withdraws its approval."""
        now = timezone.now()
        # Whoever moves the approval off pending (approve, reject, expire, this) moves the command on.
        if Approval.objects.filter(command=self.pk, state=ApprovalState.PENDING).update(
                state=ApprovalState.WITHDRAWN, decided_at=now):
            return self._move({CommandStatus.AWAITING_APPROVAL}, CommandStatus.CANCELLED, completed_at=now,
                              error="cancelled while awaiting approval")
        return self._move({CommandStatus.PENDING}, CommandStatus.CANCELLED, completed_at=now,
                          error="cancelled before a relay claimed it")

    def release(self) -> bool:
        """Approved: into the queue, queued from now (the request time stays on its approval); relays are woken."""
        if not self._move({CommandStatus.AWAITING_APPROVAL}, CommandStatus.PENDING, created_at=timezone.now()):
            return False
        self._wake_relays(notify.command_topic(self.pk))  # exec() waits on the command
        return True

    def hold_back(self, error: str) -> bool:
        """Rejected or expired: cancelled with ``error``; no relay ever sees it."""
        return self._move({CommandStatus.AWAITING_APPROVAL}, CommandStatus.CANCELLED, completed_at=timezone.now(),
                          error=error)

    def cancel(self) -> None:
        """Cancel now if unclaimed; otherwise ask the relay to kill it. An operator's act: audited (a batch's
        copies as their batch)."""
        if not self.withdraw() and not self._move(CommandStatus.active(), cancel_requested=True):
            raise self._refuse("cancel")
        if self.batch_id is None:
            audit_events.command_cancelled(self)

    def expire(self, sources: set[str] | frozenset[str], reason: str) -> bool:
        """Time the command out (sweeper); False if it moved on meanwhile."""
        return self._move(sources, CommandStatus.TIMEOUT, completed_at=timezone.now(), error=reason)

    # -- wire shapes ---------------------------------------------------------

    def to_wire(self, *, created_at: bool = True, attempt: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"_id": str(self.pk), "command": self.command, "targetType": self.target_type}
        if self.kind == CommandKind.PROBE:
            data["probe"] = True
        if self.target_host:
            data["targetHost"] = self.target_host
        if self.target_port is not None:
            data["targetPort"] = self.target_port
        if self.target_username:
            data["targetUsername"] = self.target_username
        data["timeoutMs"] = self.timeout_ms
        data.update(self.run_options_wire())
        data.update(self.packages_wire())
        data.update(self.agent_update_wire())
        if created_at:
            data["createdAt"] = epoch_ms(self.created_at)
        if attempt:
            data["attempt"] = self.attempt
        return data


class OutputChunk(models.Model):
    """Live output as the relay streams it; ``offset`` counts characters of the stream."""

    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="chunks")
    stream = models.CharField(max_length=6, choices=Stream.choices)
    offset = models.PositiveBigIntegerField()
    data = models.TextField()
    # UTF-8 bytes of data: the cap is in bytes, offsets in characters.
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["command", "stream", "offset"]
        constraints = [
            models.UniqueConstraint(fields=["command", "stream", "offset"], name="unique_chunk_offset"),
        ]


class FullOutput(models.Model):
    """A stream's whole output, as the relay read it, for a command whose output went over the cap.

    ``name`` is the file's name in the ``command_output`` storage (``commands.full_output``); the
    file is deleted with the row.
    """

    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="full_outputs")
    stream = models.CharField(max_length=6, choices=Stream.choices)
    name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    attempt = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["command", "stream"]
        constraints = [
            models.UniqueConstraint(fields=["command", "stream"], name="unique_full_output_stream"),
        ]

    def __str__(self) -> str:
        return f"full {self.stream} of command {self.command_id}"
