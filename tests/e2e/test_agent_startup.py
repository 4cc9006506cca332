"""The real relay-agent starting against the real hub: verify, report status, sync pushes and credentials (SPEC §6)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from relay_agent.store import CredentialStore

from assignments.models import MetricSample, RelayStatus
from configpush.models import ConfigPush
from credentials import crypto
from credentials.models import CredentialInventoryItem, SharedCredential
from tests.e2e.processes import wait_for

FAST = ("--long-poll-wait", "500")
METRIC_KEYS = {"cpuPercent", "memoryPercent", "memoryUsedMb", "memoryTotalMb", "diskPercent", "diskUsedGb",
               "diskTotalGb", "loadAvg1m", "loadAvg5m", "loadAvg15m"}


def test_it_reports_its_status_and_metrics(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST)

    status = RelayStatus.objects.get(pk=e2e_relay.relay.pk)
    assert status.capabilities == ["local_cmd", "packages", "perf_metrics", "run_options", "self_update", "ssh"], \
        "run_options, packages and self_update: told to a relayhub only"
    assert (status.version, status.hostname, status.platform) == ("0.1.0", socket.gethostname(), sys.platform)
    assert set(status.metrics) == METRIC_KEYS
    assert status.is_online
    assert MetricSample.objects.filter(relay=e2e_relay.relay).exists()


def test_it_stores_shared_and_pushed_credentials_and_reports_only_metadata(
    hub, e2e_relay, start_agent, tmp_path: Path
) -> None:
    shared = SharedCredential(name="db-password", credential_type="password", target_host="10.0.0.5")
    shared.set_value("shared-value")
    shared.save()
    shared.assigned_relays.add(e2e_relay.relay)
    push = ConfigPush.objects.create(relay=e2e_relay.relay, push_type="credential", payload={
        "name": "deploy-token", "credentialType": "api_key",
        "encryptedValue": crypto.encrypt_for_relay(e2e_relay.transport_secret, "pushed-value")})
    store = tmp_path / "store"

    start_agent(e2e_relay, hub, *FAST, store_dir=store)

    wait_for(lambda: CredentialInventoryItem.objects.filter(relay=e2e_relay.relay).count() == 2, 10,
             "both credentials in the reported inventory")
    push.refresh_from_db()
    assert push.status == "acked"
    items = CredentialInventoryItem.objects.filter(relay=e2e_relay.relay)
    assert [(i.credential_name, i.credential_type, i.target_host, i.storage_mode) for i in items] == [
        ("db-password", "password", "10.0.0.5", "shared"), ("deploy-token", "api_key", "", "shared")]
    values = CredentialStore(store)
    assert (values.get("db-password").value, values.get("deploy-token").value) == ("shared-value", "pushed-value")


@pytest.mark.parametrize("lock_out", ["revoke the key", "disable the relay"])
def test_a_refused_key_stops_the_agent(hub, e2e_relay, start_agent, lock_out: str) -> None:
    relay = e2e_relay.relay
    if lock_out == "revoke the key":
        relay.revoke_key()
    else:
        relay.enabled = False
        relay.save()

    agent = start_agent(e2e_relay, hub, *FAST, wait=False)

    assert agent.proc.wait(15) == 2
    assert 'event="hub rejected the api key"' in agent.output
