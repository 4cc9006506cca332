"""The relayhub relay agent: no Django, and nothing of the hub but its HTTP protocol.

- Lifecycle: ``cli`` (entry point), ``options`` and ``settings`` (command line and
  environment), ``agent`` (starting, heartbeats, status, shutdown), ``logs``.
- Talking to the hub: ``hub`` (HTTP client), ``claiming`` (long-poll, polling
  fallback, announcing starts), ``results`` and ``spool`` (durable results),
  ``streaming`` (live output), ``status`` and ``metrics``, ``backoff``.
- Running commands: ``slots``, ``runner``, ``executor`` (local), ``ssh``,
  ``ssh_auth``, ``host_keys`` and ``remote_line`` (over SSH), ``probe`` (SSH "test
  connection"), ``output`` (capture and caps).
- What the relay trusts: ``config`` and ``hub_sync`` (pushed configuration),
  ``allowlist`` (allowed_commands), ``store`` (the encrypted credential store and
  its host bindings), ``transport`` (decrypting shared credentials),
  ``credentials_cli``, ``files`` (private files).
"""

__version__ = "0.1.0"
