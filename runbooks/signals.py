"""Signals runbooks sends, for whatever reports them (notifications, issue 17).

``scheduled_run_never_started``: a scheduled run whose targets no relay claimed within the
schedule's time to live, once it is marked so. Sent after the change commits, with ``run``
(the ScheduledRun), ``schedule`` and ``targets`` (the names of the targets that never started).
"""

from django.dispatch import Signal

scheduled_run_never_started = Signal()
