"""The status report: this relay's capabilities, version, host, credential inventory and metrics."""

from __future__ import annotations

import socket
import sys
from typing import Any

from . import __version__
from .hub import HubClient, HubError, HubExtensions
from .logs import AGENT_LOGGER, get_logger
from .metrics import MetricsCollector
from .store import CredentialStore, CredentialStoreError

log = get_logger(AGENT_LOGGER)

CAPABILITIES = ["local_cmd", "ssh", "perf_metrics"]
# Told only to a hub known to be a relayhub: the original hub accepts the three above and no others.
EXTENSION_CAPABILITIES = ["run_options", "packages"]


class StatusReporter:
    def __init__(self, hub: HubClient, store: CredentialStore, extensions: HubExtensions | None = None,
                 self_update: bool = False) -> None:
        self.hub = hub
        self.self_update = self_update
        self.store = store
        self.extensions = extensions or HubExtensions()
        self.metrics = MetricsCollector()

    def status_body(self, relay_id: str | None) -> dict:
        body: dict[str, Any] = {
            "relayId": relay_id,
            "capabilities": CAPABILITIES + (EXTENSION_CAPABILITIES + (["self_update"] if self.self_update else [])
                                            if self.extensions.relayhub else []),
            "version": __version__,
            "hostname": socket.gethostname(),
            "platform": sys.platform,
            "credentials": self.store.inventory(),
        }
        try:
            body["metrics"] = self.metrics.collect()
        except Exception as exc:
            log.warning("metrics unavailable", error=str(exc))
        return body

    def report(self, relay_id: str | None) -> int:
        """Post the status; how many config pushes the hub says are pending."""
        try:
            answer = self.hub.report_status(self.status_body(relay_id))
        except (HubError, CredentialStoreError) as exc:
            log.warning("status report failed", error=str(exc))
            return 0
        pending = answer.get("pendingConfigPushes")
        return pending if isinstance(pending, int) else 0
