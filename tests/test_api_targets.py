"""SSH targets over the REST API: who may change them, the ssh_targets push they cause, selectors and batches."""

import pytest

from assignments.models import RelayAssignment
from commands.models import Command
from configpush.models import ConfigPush
from fleet.models import SSHTarget
from tests.conftest import api_client_for, mark_online

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture
def relay():
    relay = RelayAssignment.issue(machine_id="gw-1", name="gateway-1").relay
    mark_online(relay)
    return relay


def make_targets(relay, count, **labels):
    targets = []
    for n in range(count):
        target = SSHTarget.objects.create(name=f"web-{n:02d}", host="127.0.0.1", port=2200 + n, username="ops",
                                          labels={"env": "prod" if n % 2 == 0 else "dev", **labels})
        target.relays.add(relay)
        targets.append(target)
    return targets


def pushes(relay):
    return list(ConfigPush.objects.filter(relay=relay, push_type="ssh_targets").order_by("pk"))


def test_configurer_creates_a_target_and_its_relay_gets_the_ssh_targets_push(make_operator, relay):
    api = api_client_for(make_operator("cfg", configure=[relay]))
    created = api.post("/api/v1/targets/", {"name": "router-1", "host": "10.0.0.1", "port": 22, "username": "admin",
                                            "relays": [str(relay.pk)], "labels": {"site": "lab"},
                                            "host_keys": KEY + " comment"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["labels"] == {"site": "lab"} and body["last_test"] is None
    [push] = pushes(relay)
    assert push.payload == {"targets": [{"host": "10.0.0.1", "port": 22, "hostKey": KEY}]}

    # Changing only labels leaves the relay's policy alone: no second push.
    assert api.patch(f"/api/v1/targets/{body['id']}/", {"labels": {"site": "hq"}}, format="json").status_code == 200
    assert len(pushes(relay)) == 1
    # Disabling it takes it off the relay's list.
    assert api.patch(f"/api/v1/targets/{body['id']}/", {"enabled": False}, format="json").status_code == 200
    assert pushes(relay)[-1].payload == {"targets": []}


def test_deleting_the_last_target_pushes_an_empty_list(admin_api, relay):
    [target] = make_targets(relay, 1)
    assert pushes(relay)[-1].payload["targets"] == [{"host": "127.0.0.1", "port": 2200}]
    assert admin_api.delete(f"/api/v1/targets/{target.pk}/").status_code == 204
    assert pushes(relay)[-1].payload == {"targets": []}


def test_a_runner_may_see_and_test_but_never_change_a_target(make_operator, relay):
    [target] = make_targets(relay, 1)
    runner = api_client_for(make_operator("runner", run=[relay]))
    assert runner.get(f"/api/v1/targets/{target.pk}/").status_code == 200
    before = len(pushes(relay))
    assert runner.patch(f"/api/v1/targets/{target.pk}/", {"host_keys": KEY}, format="json").status_code == 403
    assert runner.delete(f"/api/v1/targets/{target.pk}/").status_code == 403
    assert runner.post("/api/v1/targets/", {"name": "evil", "host": "203.0.113.9", "relays": [str(relay.pk)]},
                       format="json").status_code == 403
    assert runner.post(f"/api/v1/targets/{target.pk}/pin-host-key/", {"fingerprint": "SHA256:x"},
                       format="json").status_code == 403
    assert len(pushes(relay)) == before and SSHTarget.objects.count() == 1


def test_a_stranger_does_not_see_targets(make_operator, relay):
    [target] = make_targets(relay, 1)
    other = RelayAssignment.issue(machine_id="elsewhere", name="elsewhere").relay
    stranger = api_client_for(make_operator("stranger", configure=[other]))
    assert stranger.get("/api/v1/targets/").json()["results"] == []
    assert stranger.get(f"/api/v1/targets/{target.pk}/").status_code == 404
    assert stranger.post(f"/api/v1/targets/{target.pk}/test/", {}, format="json").status_code == 404


def test_targets_filter_by_selector_and_bad_selectors_are_400(admin_api, relay):
    make_targets(relay, 4, role="web")
    listed = admin_api.get("/api/v1/targets/", {"selector": "env=prod,role in (web)"}).json()
    names = [t["name"] for t in listed["results"]]
    assert names == ["web-00", "web-02"]
    bad = admin_api.get("/api/v1/targets/", {"selector": "env in prod"})
    assert bad.status_code == 400 and "expected '('" in bad.json()["fields"]["selector"][0]
    bad_labels = admin_api.post("/api/v1/targets/", {"name": "x", "host": "h", "relays": [str(relay.pk)],
                                                     "labels": {"-bad": "1"}}, format="json")
    assert bad_labels.status_code == 400 and "invalid label key" in bad_labels.json()["fields"]["labels"][0]


def test_relays_carry_labels_and_filter_by_selector(admin_api, relay):
    RelayAssignment.objects.filter(pk=relay.pk).update(labels={"site": "lab"})
    RelayAssignment.issue(machine_id="gw-2", name="gateway-2")
    listed = admin_api.get("/api/v1/relays/", {"selector": "site=lab"}).json()["results"]
    assert [r["name"] for r in listed] == ["gateway-1"] and listed[0]["labels"] == {"site": "lab"}


def test_selector_batch_over_targets_labels_each_copy_by_host(admin_api, relay):
    make_targets(relay, 6)
    created = admin_api.post("/api/v1/batches/", {"selector": "env=prod", "target_type": "ssh", "command": "uptime",
                                                  "max_concurrency": "50%", "max_errors": "0%"}, format="json")
    assert created.status_code == 201, created.content
    batch = created.json()
    assert batch["max_concurrency"] == 2 and batch["max_errors"] == 0
    assert [t["name"] for t in batch["targets"]] == ["web-00", "web-02", "web-04"]
    queued = list(Command.objects.order_by("pk"))
    assert [(c.target_name, c.target_host, c.target_port, c.target_username, c.machine_id) for c in queued] == [
        ("web-00", "127.0.0.1", 2200, "ops", "gw-1"), ("web-02", "127.0.0.1", 2202, "ops", "gw-1")]
    assert batch["counts"] == {"pending": 2, "waiting": 1, "failed_runs": 0, "not_delivered": 0, "total": 3}


def test_offline_relay_targets_are_not_delivered_and_not_errors(admin_api, relay):
    targets = make_targets(relay, 2)
    offline = RelayAssignment.issue(machine_id="gw-off", name="gateway-off").relay
    far = SSHTarget.objects.create(name="far", host="192.0.2.7", labels={"env": "prod"})
    far.relays.add(offline)
    created = admin_api.post("/api/v1/batches/", {"targets": [targets[0].pk, far.pk], "command": "id",
                                                  "max_errors": 0}, format="json").json()
    by_name = {t["name"]: t for t in created["targets"]}
    assert by_name["far"]["status"] == "undelivered" and by_name["far"]["delivered"] is False
    assert "no enabled relay is online" in by_name["far"]["error"]
    assert created["stopped"] is False and created["counts"]["not_delivered"] == 1
    assert created["counts"]["failed_runs"] == 0

    # Rerun the failed targets: only the undelivered one goes again.
    rerun = admin_api.post(f"/api/v1/batches/{created['id']}/rerun-failed/")
    assert rerun.status_code == 201 and [t["name"] for t in rerun.json()["targets"]] == ["far"]


def test_batch_input_errors_are_clear_400s(admin_api, relay):
    make_targets(relay, 1)
    cases = [
        ({"command": "id"}, "exactly one of machine_ids, targets or selector"),
        ({"command": "id", "selector": "env=prod", "machine_ids": ["gw-1"]}, "exactly one"),
        ({"command": "id", "selector": "env=nothing", "target_type": "ssh"}, "matches nothing"),
        ({"command": "id", "selector": "env in (", "target_type": "ssh"}, "ends early"),
        ({"command": "id", "targets": [99999]}, "no such SSH target: 99999"),
        ({"command": "id", "machine_ids": ["nobody"]}, "no enabled relay serves machine 'nobody'"),
        ({"command": "id", "machine_ids": ["gw-1"], "max_concurrency": "150%"}, "percentage from 0% to 100%"),
        ({"command": "id", "machine_ids": ["gw-1"], "max_errors": "lots"}, "whole number"),
    ]
    for body, says in cases:
        response = admin_api.post("/api/v1/batches/", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert says in response.content.decode(), (body, response.json())
    assert not Command.objects.exists()


def test_a_runner_cannot_batch_onto_targets_of_relays_they_may_not_run_on(make_operator, relay):
    make_targets(relay, 2)
    viewer = api_client_for(make_operator("viewer", view=[relay]))
    response = viewer.post("/api/v1/batches/", {"selector": "env", "target_type": "ssh", "command": "id"},
                           format="json")
    assert response.status_code == 403 and not Command.objects.exists()


def test_single_command_for_a_machine_without_a_relay_online_is_refused_unless_asked(admin_api, relay):
    nobody = admin_api.post("/api/v1/commands/", {"machine_id": "nobody", "command": "id"}, format="json")
    assert nobody.status_code == 400 and "no enabled relay serves machine 'nobody'" in nobody.json()["fields"]["machine_id"][0]
    RelayAssignment.issue(machine_id="sleepy", name="sleepy")
    offline = admin_api.post("/api/v1/commands/", {"machine_id": "sleepy", "command": "id"}, format="json")
    assert offline.status_code == 400 and "is online" in offline.json()["fields"]["machine_id"][0]
    queued = admin_api.post("/api/v1/commands/", {"machine_id": "sleepy", "command": "id", "queue_if_offline": True},
                            format="json")
    assert queued.status_code == 201 and queued.json()["waiting_for"] == "no relay online"
    online = admin_api.post("/api/v1/commands/", {"machine_id": "gw-1", "command": "id"}, format="json")
    assert online.status_code == 201 and online.json()["waiting_for"] is None


def test_credential_problems_say_why_a_login_could_not_work(admin_api, relay):
    from django.utils import timezone

    from credentials.models import CredentialInventoryItem, SharedCredential

    [target] = make_targets(relay, 1)

    def problems(name):
        SSHTarget.objects.filter(pk=target.pk).update(credential_name=name)
        return admin_api.get(f"/api/v1/targets/{target.pk}/").json()["credential_problems"]

    assert problems("") == []
    assert problems("ops-key") == ["relay 'gateway-1' reports no credential named 'ops-key'"]
    item = CredentialInventoryItem.objects.create(relay=relay, credential_name="ops-key", credential_type="ssh_key",
                                                  target_host="10.9.9.9", storage_mode="relay_only",
                                                  reported_at=timezone.now())
    assert problems("ops-key") == ["relay 'gateway-1' holds 'ops-key' bound to 10.9.9.9, so it is never offered "
                                   "to 127.0.0.1:2200"]
    CredentialInventoryItem.objects.filter(pk=item.pk).update(target_host="127.0.0.1:2200")
    assert problems("ops-key") == []
    shared = SharedCredential(name="fleet-pw", credential_type="password", target_host="127.0.0.1")
    shared.set_value("sentinel-not-shown")
    shared.save()
    assert problems("fleet-pw") == ["shared credential 'fleet-pw' is not assigned to relay 'gateway-1'"]
    shared.assigned_relays.add(relay)
    assert problems("fleet-pw") == []
