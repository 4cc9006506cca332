"""Signals of relay liveness, for the apps that stand on relay identity."""

from django.dispatch import Signal

# Sent by each run of the heartbeat-lost sweep (``tasks.mark_lost_relays``), after it has marked the
# silent relays lost. Receivers release what lost relays still hold (``commands`` times out the
# commands they had claimed) and answer how many rows they changed, which the sweep counts.
lost_relays_swept = Signal()

# Sent, with ``relay_id`` and ``machine_id``, once a config push for that relay has been committed:
# a relay waiting in its long-poll is told at once, rather than at its next heartbeat.
config_queued = Signal()

# Sent, with ``relay``, ``last_fetch_at`` (None if it never fetched) and ``since``, when a sweep finds that a
# relay sends signs of life but does not fetch commands while some wait for its machine (commands.fetching).
relay_not_fetching = Signal()
