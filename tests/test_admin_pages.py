"""The admin pages render what operators need: dashboard, relay list and page, command and batch pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from assignments.models import MetricSample, RelayStatus
from commands import batches
from configpush.models import ConfigPush
from credentials.models import CredentialInventoryItem

pytestmark = pytest.mark.django_db


def heartbeat(relay, *, ago_s: float = 1, **status) -> None:
    RelayStatus.objects.filter(pk=relay.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=ago_s),
                                                   **status)


def test_the_dashboard_counts_relays_and_commands(admin_client_, issue_relay, make_command):
    online, offline, disabled = (issue_relay(f"m{i}", f"relay-{i}").relay for i in range(3))
    heartbeat(online)
    heartbeat(offline, ago_s=3600)
    disabled.enabled = False
    disabled.save()
    make_command("m0", "true")
    failed = make_command("m0", "false")
    failed.claim(online)
    failed.finish(online, 1, status="failed", exit_code=1)

    response = admin_client_.get("/admin/")

    assert response.status_code == 200
    assert response.context["relay_counts"] == {"online": 1, "offline": 1, "disabled": 1}
    assert dict(response.context["status_counts"])["failed"] == 1
    assert dict(response.context["status_counts"])["pending"] == 1
    assert list(response.context["latest_failures"]) == [failed]
    assert response.context["stalest_relays"][0] == offline
    assert sum(bar.height > 0 for bar in response.context["hourly_chart"].bars) == 1
    assert b"<svg" in response.content


def test_the_relay_list_shows_badges_versions_capabilities_and_meters(admin_client_, issue_relay):
    relay = issue_relay().relay
    heartbeat(relay, version="2.1.0", capabilities=["local_cmd", "perf_metrics"],
              metrics={"cpuPercent": 12.5, "memoryPercent": 80, "diskPercent": 95})
    issue_relay("m2", "quiet")

    page = admin_client_.get("/admin/assignments/relayassignment/").content.decode()

    assert 'rh-badge rh-online">online' in page and 'rh-badge rh-offline">offline' in page
    assert "2.1.0" in page and "local_cmd, perf_metrics" in page
    assert 'title="CPU 12%"' in page and "rh-meter rh-warn" in page and "rh-meter rh-crit" in page
    online = admin_client_.get("/admin/assignments/relayassignment/?liveness=online")
    assert list(online.context["cl"].result_list) == [relay]
    searched = admin_client_.get("/admin/assignments/relayassignment/?q=quiet")
    assert [r.name for r in searched.context["cl"].result_list] == ["quiet"]
    capable = admin_client_.get("/admin/assignments/relayassignment/?capability=perf_metrics")
    assert list(capable.context["cl"].result_list) == [relay]


def test_the_relay_page_shows_inventory_commands_pushes_and_metrics(admin_client_, issue_relay, make_command):
    relay = issue_relay().relay
    heartbeat(relay, metrics={"cpuPercent": 30, "memoryPercent": 40, "diskPercent": 50})
    CredentialInventoryItem.objects.create(relay=relay, credential_name="deploy-key", credential_type="ssh_key",
                                           storage_mode="relay_only", reported_at=timezone.now())
    make_command("machine-1", "uptime")
    ConfigPush.objects.create(relay=relay, push_type="metrics_interval", payload={"intervalMs": 5000})
    for minutes in (30, 20, 10):
        MetricSample.objects.create(relay=relay, created_at=timezone.now() - timedelta(minutes=minutes),
                                    metrics={"cpuPercent": minutes, "memoryPercent": 50, "diskPercent": 60})

    response = admin_client_.get(f"/admin/assignments/relayassignment/{relay.pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "deploy-key" in page and "uptime" in page and "metrics_interval" in page
    assert page.count("<polyline") == 3
    assert "Issue new key" in page and "Revoke key" in page and "Object permissions" in page


def test_the_command_page_shows_output_and_follows_it(admin_client_, relay, make_command):
    command = make_command(command="echo hi")
    command.claim(relay)
    command.finish(relay, 1, status="completed", exit_code=0, output="hi\n", duration_ms=12)

    page = admin_client_.get(f"/admin/commands/command/{command.pk}/change/").content.decode()

    assert "hi\n</pre>" in page
    assert 'data-finished="true"' in page
    assert f'data-output-url="/api/v1/commands/{command.pk}/output/"' in page
    assert "12 ms" in page


def test_the_batch_page_shows_one_row_per_target(admin_client_, issue_relay):
    issue_relay("a", "relay-a")
    issue_relay("b", "relay-b")
    batch = batches.create(machine_ids=["a", "b"], command="hostname", max_concurrency=1, queue_if_offline=True)

    page = admin_client_.get(f"/admin/commands/commandbatch/{batch.pk}/change/").content.decode()

    assert page.count("<tr data-machine=") == 2
    assert 'rh-badge rh-pending" data-field="status">pending' in page
    assert 'rh-badge rh-waiting" data-field="status">waiting' in page
    assert 'id="rh-batch-status" class="rh-badge rh-running">running' in page


def test_every_admin_list_renders(admin_client_, relay, make_command):
    make_command()
    for model in ["assignments/relayassignment", "assignments/relayapikey", "assignments/relayevent",
                  "commands/command", "commands/commandbatch", "credentials/sharedcredential",
                  "credentials/credentialinventoryitem", "configpush/configpush"]:
        assert admin_client_.get(f"/admin/{model}/").status_code == 200, model
    assert admin_client_.get("/admin/commands/command/run/").status_code == 200
    assert admin_client_.get("/admin/configpush/configpush/add/").status_code == 200
    assert admin_client_.get("/admin/credentials/sharedcredential/add/").status_code == 200
    assert admin_client_.get("/admin/assignments/relayassignment/add/").status_code == 200
