"""The command queue: commands and batches, their state machine and output.

Queueing and claiming (``models``, ``queue_sql``), relay routes (``relay_views``,
``longpoll``, ``results``, ``output``), the operator API (``api``, ``batch_api``,
``rpc``), ``exec()`` for programs (``execution``), wake-ups across processes
(``notify``, ``fanout``), what a user may see (``visibility``), the timeout
sweeps (``tasks``, which also time out what lost relays held) and admin pages.
"""
