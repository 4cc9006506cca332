"""Relay identity, the base the other apps stand on.

Relays (``RelayAssignment``), their API keys (``keys``) and transport secrets
(``transport``), status, liveness events and metrics, who may see, run on and
configure which relay (``access``), the status report's own part
(``status_report``), the liveness sweeps (``tasks``, ``signals``), and the relay
pages of the admin. It imports none of commands, credentials or configpush.
"""
