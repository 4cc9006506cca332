"""Signals of the command queue."""

from django.dispatch import Signal

# Sent, with ``batch_id``, once a transaction that ended a command of that batch has committed:
# the batch may stop (past max_errors) or dispatch its waiting targets (``batches.advance``).
batch_command_ended = Signal()
