"""Signals of relay liveness, for the apps that stand on relay identity."""

from django.dispatch import Signal

# Sent by each run of the heartbeat-lost sweep (``tasks.mark_lost_relays``), after it has marked the
# silent relays lost. Receivers release what lost relays still hold (``commands`` times out the
# commands they had claimed) and answer how many rows they changed, which the sweep counts.
lost_relays_swept = Signal()
