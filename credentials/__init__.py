"""Credentials: the inventory relays report, and shared credentials kept on the hub.

Shared credentials sealed at rest and encrypted for each relay (``crypto``,
``models``), which relays hold them (``assignment``), their delivery as config
pushes (``pushes``), the relay routes for status and shared credentials
(``relay_views``, ``inventory``), the operator API and admin pages.
"""
