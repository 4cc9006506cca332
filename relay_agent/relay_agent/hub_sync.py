"""What the hub pushes to this relay: config pushes, applied and acknowledged, and its shared credentials, stored."""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import transport
from .config import AgentConfig, ConfigError
from .hub import HubClient, HubError
from .logs import AGENT_LOGGER, get_logger
from .store import CredentialStore, CredentialStoreError

log = get_logger(AGENT_LOGGER)


class HubSync:
    """`on_metrics_interval` is called when a push changes the metrics interval."""

    def __init__(
        self,
        hub: HubClient,
        config: AgentConfig,
        store: CredentialStore,
        shared_secret: str | None,
        on_metrics_interval: Callable[[], None],
    ) -> None:
        self.hub = hub
        self.config = config
        self.store = store
        self.shared_secret = shared_secret
        self._on_metrics_interval = on_metrics_interval
        self._sync_lock = threading.Lock()
        self._warned_no_secret = False

    def sync_config(self, relay_id: str | None) -> None:
        with self._sync_lock:
            try:
                pushes = self.hub.config_pushes(relay_id or "")
            except HubError as exc:
                log.warning("fetching config pushes failed", error=str(exc))
                return
            for push in pushes:
                push_id, push_type = str(push.get("_id")), str(push.get("pushType"))
                try:
                    payload = push.get("payload")
                    self.config.apply(push_type, payload if payload is not None else "")
                    success, message = True, None
                except ConfigError as exc:
                    success, message = False, str(exc)
                except Exception as exc:
                    success, message = False, f"relay agent error: {type(exc).__name__}"
                log.info(
                    "config push applied" if success else "config push rejected",
                    pushId=push_id,
                    pushType=push_type,
                    error=message or "",
                )
                if success and push_type == "metrics_interval":
                    self._on_metrics_interval()
                try:
                    self.hub.ack_config_push(push_id, success, message)
                except HubError as exc:
                    # Unacked pushes come back; applying one twice is harmless.
                    log.warning("acking config push failed", pushId=push_id, error=str(exc))

    def sync_shared_credentials(self, relay_id: str | None) -> bool:
        """Store the shared credentials assigned to this relay; True when any changed."""
        try:
            items = self.hub.shared_credentials(relay_id or "")
        except HubError as exc:
            log.warning("fetching shared credentials failed", error=str(exc))
            return False
        if items and not self.shared_secret:
            if not self._warned_no_secret:
                log.warning("shared credentials are assigned but no --shared-secret is set", count=len(items))
                self._warned_no_secret = True
            return False
        changed = False
        for item in items:
            name = str(item.get("name", ""))
            try:
                value = transport.decrypt(str(item.get("encryptedValue", "")), self.shared_secret or "")
                before = self.store.get(name)
                stored = self.store.put(
                    name,
                    str(item.get("credentialType", "")),
                    value,
                    item.get("targetHost") or None,
                    item.get("username") or None,
                    storage_mode="shared",
                )
            except (transport.TransportDecryptError, CredentialStoreError) as exc:
                log.warning("shared credential not stored", name=name, error=str(exc))
                continue
            if before is None or before.last_updated_at != stored.last_updated_at:
                changed = True
                log.info("shared credential stored", name=name, credentialType=stored.credential_type)
        return changed
