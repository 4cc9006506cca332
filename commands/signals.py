"""Signals of the command queue."""

from django.dispatch import Signal

# Sent, with ``batch_id``, once a transaction that ended a command of that batch has committed:
# the batch may stop (past max_errors) or dispatch its waiting targets (``batches.advance``).
batch_command_ended = Signal()

# Sent, with ``ended``, a list of ``(pk, status)`` of commands that reached a final status, once the
# transaction that ended them has committed (``notifications`` tells of those that failed or timed out).
command_ended = Signal()

# Sent by the approvals flow once a request for approval has been committed, with ``approval`` (the
# pending Approval: its command or batch, requester and reasons) or, plainly, ``approval_id``,
# ``command_ids``, ``batch_id``, ``template_name`` and ``requested_by``; ``notifications`` tells whoever
# asked. (Defined here for notifications; the approvals work sends it, and the merge reconciles the two.)
approval_requested = Signal()
