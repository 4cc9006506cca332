"""The hub's web kit: conventions every route shares, relay and operator alike.

JSON bodies (``json_body``) and JSON errors (``errors``), strict input fields
and wire formats (``fields``), middleware for the client address and body size
(``middleware``), the failed-authentication limit per address (``failed_auth``),
operator tokens, permissions, paging and rate (``operator_tokens``,
``permissions``, ``pagination``, ``throttling``), sessions keyed by a digest
(``sessions``), static files under ASGI (``static_files``), the shared
Redis pool (``cache``), and the Prometheus metrics every layer counts into
(``metrics``, ``metrics_files``; served by ``relayhub.metrics_view``). It knows
no app: everything else may stand on it.
"""
