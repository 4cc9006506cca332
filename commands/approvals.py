"""Four eyes: commands and batches that wait for a second person before any relay may take them.

**The gate.** Every command created on its own (``Command.save``: the API, rerun, the admin's run form and
rerun, ``exec()``/``exec_async()``, ``relay_exec``, the RPC, plain ``Command.objects.create``) and every batch
(``batches.create``: the batch API, rerun-failed, the run form) is held back when an enabled relay of a
machine it goes to has ``requires_approval``, or when its creator asks for approval with a ``Need``:

    from commands import approvals, batches
    from commands.models import Command

    need = approvals.Need(reasons=["template 'Restart nginx' requires approval"],
                          approver_object=template, approver_permission="runbooks.approve_template")
    command = approvals.queue(Command(machine_id="web-01", command="systemctl restart nginx",
                                      created_by=user), approval=need)
    batch = batches.create(destinations=..., created_by=user, approval=need, command="...")
    exec_async("web-01", "...", created_by=user, approval=need)     # exec() takes it too

A held command is saved ``awaiting_approval`` (never claimable, not in flight); a held batch is created
with no copies and dispatches nothing. Either carries one pending ``Approval`` (``command.approval``,
``batch.approval``) with the reasons (the relays' and the Need's), who asked and when, and when it expires
(``RELAYHUB["APPROVAL_TTL_S"]``, 24 h). A probe (test connection) runs nothing and is not held.

**Deciding.** ``approve(approval, user, reason)`` queues the command (it counts as queued from then) and
wakes its relays, or starts the batch dispatching; ``reject(approval, user, reason)`` cancels it with
"rejected by USER: REASON"; ``expire_due()`` (a beat sweep) cancels those past their time with "approval
expired after 24 h"; cancelling a held command or batch withdraws its approval. Who may decide
(``may_decide``): never the requester; a superuser; a holder of ``approve_command`` on every relay of every
machine involved; or a holder of the Need's ``approver_permission`` on its ``approver_object`` (or
model-wide). A refusal raises ``Refused`` (403); an approval decided already or expired raises ``Conflict``
(409). The first decision wins: each is one conditional UPDATE of the approval's row from pending, and
only the move that wins it moves the command or batch on.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Case, Q, QuerySet, Value, When
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from assignments import access
from commands import audit_events, batches, display, secrets
from commands.approval_model import Approval, Need, needed_for, of
from commands.choices import ApprovalState
from commands.models import Command, CommandBatch

__all__ = ["Approval", "Conflict", "Need", "Refused", "approve", "describe", "expire_due", "expire_if_due",
           "may_decide", "needed_for", "of", "queue", "reject", "visible_to", "waiting_for"]


class Refused(Exception):
    """The user may not decide this approval (403)."""


class Conflict(Exception):
    """The approval was decided already, withdrawn or expired (409)."""


def queue(command: Command, *, approval: Need | None = None) -> Command:
    """Save a new command through the gate (``Command.save`` does): ``awaiting_approval`` if it needs approval."""
    command.save(approval=approval)
    return command


def approve(approval: Approval, user: Any, reason: str = "") -> Approval:
    """Approve: the command is queued and its relays woken, or the batch starts dispatching."""
    return _decide(approval, user, ApprovalState.APPROVED, reason.strip())


def reject(approval: Approval, user: Any, reason: str) -> Approval:
    """Reject, saying why: the command (or each target of the batch) is cancelled and never reaches a relay."""
    if not (reason or "").strip():
        raise ValueError("a rejection needs a reason")
    return _decide(approval, user, ApprovalState.REJECTED, reason.strip())


def _decide(approval: Approval, user: Any, state: str, reason: str) -> Approval:
    now = timezone.now()
    approval.refresh_from_db()
    if approval.state == ApprovalState.PENDING and approval.expires_at <= now:
        _expire(approval, now)
        approval.refresh_from_db()
    if approval.state != ApprovalState.PENDING:
        raise Conflict(_settled(approval))
    why_not = may_decide(approval, user)
    if why_not:
        raise Refused(why_not)
    with transaction.atomic():
        # The one UPDATE that takes the approval off pending decides; a concurrent decision finds it moved.
        moved = Approval.objects.filter(pk=approval.pk, state=ApprovalState.PENDING, expires_at__gt=now).update(
            state=state, decided_by=user, decided_at=now, reason=reason)
        if moved and state == ApprovalState.APPROVED:
            _release(approval)
        elif moved:
            _hold_back(approval, f"rejected by {user.get_username()}: {reason}")
        if moved:
            approval.refresh_from_db()
            audit_events.decided(approval, user)
    approval.refresh_from_db()
    if not moved:
        if approval.state == ApprovalState.PENDING:  # it came due meanwhile
            _expire(approval, timezone.now())
            approval.refresh_from_db()
        raise Conflict(_settled(approval))
    return approval


def _release(approval: Approval) -> None:
    if approval.command_id is not None:
        if not approval.command.release():
            raise Conflict(f"command {approval.command_id} is {approval.command.status}, not awaiting approval")
    else:
        batches.advance(approval.batch_id)


def _hold_back(approval: Approval, error: str) -> None:
    if approval.command_id is not None:
        approval.command.hold_back(error)
    else:
        batches.refuse(approval.batch_id, error)


def _settled(approval: Approval) -> str:
    what = f"{approval.kind} {approval.command_id or approval.batch_id}"
    if approval.state == ApprovalState.EXPIRED:
        return f"the approval of {what} expired at {display.moment(approval.expires_at)}"
    if approval.state == ApprovalState.WITHDRAWN:
        return f"{what} was cancelled before anyone decided"
    by = f" by {approval.decided_by.get_username()}" if approval.decided_by_id else ""
    return f"{what} was {approval.state}{by} at {display.moment(approval.decided_at)} already"


def expired_error(approval: Approval) -> str:
    return f"approval expired after {display.human_ms(round(approval.ttl.total_seconds()) * 1000)}"


def _expire(approval: Approval, now: Any) -> bool:
    with transaction.atomic():
        if not Approval.objects.filter(pk=approval.pk, state=ApprovalState.PENDING, expires_at__lte=now).update(
                state=ApprovalState.EXPIRED, decided_at=now):
            return False
        _hold_back(approval, expired_error(approval))
    return True


def expire_if_due(subject: Command | CommandBatch) -> bool:
    """Expire the approval of this command or batch if it is pending past its time; whether it did."""
    now = timezone.now()
    approval = Approval.objects.filter(state=ApprovalState.PENDING, expires_at__lte=now, **{
        "command" if isinstance(subject, Command) else "batch": subject.pk}).first()
    return approval is not None and _expire(approval, now)


def expire_due(limit: int = 500) -> int:
    """Expire up to ``limit`` pending approvals past their time, oldest first; idempotent. How many it expired."""
    now = timezone.now()
    due = Approval.objects.filter(state=ApprovalState.PENDING, expires_at__lte=now).select_related(
        "command", "batch").order_by("expires_at")[:limit]
    return sum(_expire(approval, now) for approval in due)


def may_decide(approval: Approval, user: Any) -> str:
    """Empty if the user may approve or reject it; otherwise why not."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "relay", None):
        return "only operators decide approvals"
    if approval.requested_by_id is not None and approval.requested_by_id == user.pk:
        return "you asked for this; another person must approve or reject it (four eyes)"
    if user.is_superuser or _holds_approver_permission(approval, user):
        return ""
    machines = approval.machine_ids()
    if access.approves_machines(user, machines):
        return ""
    also = f", or {approval.approver_permission} on {approval.approver_object}" if approval.approver_permission else ""
    return f"deciding needs approve_command on every relay of {', '.join(machines)}{also}"


def _holds_approver_permission(approval: Approval, user: Any) -> bool:
    perm = approval.approver_permission
    if not perm:
        return False
    try:
        target = approval.approver_object
        return user.has_perm(perm) or (target is not None and user.has_perm(perm, target))
    except Exception:  # noqa: BLE001 - a permission of another app than its object's (guardian's WrongAppError)
        return False


def visible_to(user: Any) -> QuerySet[Approval]:
    """Approvals the user may see: of commands and batches they may see, or may approve, and their own requests;
    pending ones first."""
    rows = Approval.objects.select_related("command", "batch", "requested_by", "decided_by").order_by(
        Case(When(state=ApprovalState.PENDING, then=Value(0)), default=Value(1)), "-requested_at", "-id")
    if not getattr(user, "is_authenticated", False) or getattr(user, "relay", None):
        return rows.none()
    if user.is_superuser or user.has_perm(access.VIEW) or user.has_perm(access.APPROVE):
        return rows
    machines = {*access.machine_ids_for(user).values_list("machine_id", flat=True),
                *access.machine_ids_for(user, access.APPROVE).values_list("machine_id", flat=True)}
    held = batches.within(CommandBatch.objects.filter(approval__isnull=False), machines)
    seen = Q(requested_by=user) | Q(command__machine_id__in=machines) | Q(batch__in=held)
    for type_id, perm in Approval.objects.exclude(approver_permission="").values_list(
            "approver_type", "approver_permission").distinct():
        seen |= _by_approver_permission(user, type_id, perm)
    return rows.filter(seen)


def _by_approver_permission(user: Any, type_id: int | None, perm: str) -> Q:
    if type_id is None:  # the permission model-wide, with no object
        return Q(approver_type=None, approver_permission=perm) if user.has_perm(perm) else Q(pk__in=[])
    model = ContentType.objects.get_for_id(type_id).model_class()
    if model is None:
        return Q(pk__in=[])
    try:
        ids = [str(pk) for pk in get_objects_for_user(user, perm, klass=model, accept_global_perms=True)
               .values_list("pk", flat=True)]
    except Exception:  # noqa: BLE001 - a permission guardian cannot apply to this model
        return Q(pk__in=[])
    return Q(approver_type=type_id, approver_permission=perm, approver_id__in=ids)


def waiting_for(user: Any, limit: int = 200) -> list[Approval]:
    """Pending approvals this user may decide (the dashboard's count)."""
    pending = list(visible_to(user).filter(state=ApprovalState.PENDING, expires_at__gt=timezone.now())[:limit])
    answers: dict[tuple, bool] = {}  # approvals alike in who may decide them are judged once

    def may(approval: Approval) -> bool:
        alike = (approval.requested_by_id, approval.approver_type_id, approval.approver_id,
                 approval.approver_permission, tuple(approval.machine_ids()))
        if alike not in answers:
            answers[alike] = not may_decide(approval, user)
        return answers[alike]

    return [approval for approval in pending if may(approval)]


def describe(approval: Approval) -> dict[str, Any]:
    """Exactly what will run, for the approver: command or script, how it runs, and where. Secret variables
    show only which credential they read (``NAME=******** (credential NAME)``); no value is ever read here."""
    subject = approval.subject
    if approval.command_id is not None:
        host = subject.target_host
        targets = [{"machine_id": subject.machine_id, "name": subject.target_name, "host": host}]
    else:
        targets = [{"machine_id": d["machine_id"], "name": d.get("name", ""),
                    "host": d.get("target_host") or subject.target_host} for d in subject.destinations]
    environment = [f"{name}={value}" for name, value in (subject.environment or {}).items()]
    environment += [f"{name}={secrets.MASK} (credential {credential})"
                    for name, credential in (subject.secret_environment or {}).items()]
    return {
        "kind": approval.kind,
        "command": subject.command,
        "script": subject.script,
        "interpreter": subject.interpreter if subject.script else "",
        "working_directory": subject.working_directory,
        "run_as": subject.run_as,
        "environment": environment,
        "target_type": subject.target_type,
        "timeout": display.human_ms(subject.timeout_ms),
        "priority": subject.priority,
        "target_count": len(targets),
        "targets": targets,
        "status": subject.status if approval.command_id is not None else batches.overall_status(
            subject, batches.targets(subject)),
    }
