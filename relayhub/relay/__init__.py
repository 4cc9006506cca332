"""The relay protocol kit: what every relay route (SPEC §3) is built from.

Key authentication (``auth``: ``X-API-Key`` to a relay; refusals count in ``web.failed_auth``),
the DRF base view (``views``) and the async routes of the hot path (``routes``),
the per-key rate limit (``throttling``), the OpenAPI helpers (``schema``),
one-statement SQL for the hot path (``rawsql``), and the one route that is only
about the key: ``verify``. It stands on relay identity (``assignments``); the
apps above build their relay routes from it.
"""
