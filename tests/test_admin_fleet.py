"""SSH targets in the admin: who sees and changes them, selector search, and the relay page's panel."""

import pytest
from django.test import Client

from assignments.models import RelayAssignment
from configpush.models import ConfigPush
from fleet.models import SSHTarget

pytestmark = pytest.mark.django_db
LIST = "/admin/fleet/sshtarget/"


@pytest.fixture
def relay():
    return RelayAssignment.issue(machine_id="gw-1", name="gateway-1").relay


@pytest.fixture
def targets(relay):
    made = []
    for name, labels in [("web-01", {"env": "prod", "role": "web"}), ("db-01", {"env": "prod", "role": "db"}),
                         ("web-02", {"env": "dev", "role": "web"})]:
        target = SSHTarget.objects.create(name=name, host=f"{name}.lan", username="ops", labels=labels)
        target.relays.add(relay)
        made.append(target)
    return made


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_selector_search_on_the_target_list(admin_client_, targets):
    page = admin_client_.get(LIST, {"selector": "env=prod,role in (web)"}).content.decode()
    assert "web-01" in page and "db-01" not in page and "web-02" not in page
    bad = admin_client_.get(LIST, {"selector": "role in web"})
    assert bad.status_code == 200 and "expected &#x27;(&#x27; after &#x27;in&#x27;" in bad.content.decode()


@pytest.mark.django_db(transaction=True)
def test_configurer_adds_a_target_from_the_admin_and_the_relay_gets_it(make_operator, relay):
    client = client_for(make_operator("cfg", configure=[relay]))
    response = client.post(f"{LIST}add/", {"name": "router-1", "host": "10.0.0.1", "port": "22", "username": "admin",
                                          "relays": [str(relay.pk)], "labels": "site=lab, role=router",
                                          "host_keys": "", "credential_name": "", "enabled": "on"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    target = SSHTarget.objects.get(name="router-1")
    assert target.labels == {"role": "router", "site": "lab"}
    assert ConfigPush.objects.get(relay=relay, push_type="ssh_targets").payload == {
        "targets": [{"host": "10.0.0.1", "port": 22}]}


def test_bad_labels_are_a_form_error(admin_client_, relay):
    response = admin_client_.post(f"{LIST}add/", {"name": "x", "host": "h", "port": "22", "relays": [str(relay.pk)],
                                                  "labels": "env", "enabled": "on"})
    assert response.status_code == 200 and not SSHTarget.objects.exists()
    assert "must be written key=value" in str(response.context["adminform"].form.errors["labels"])


def test_a_runner_sees_targets_but_cannot_change_test_as_configurer_or_pin(make_operator, relay, targets):
    client = client_for(make_operator("runner", run=[relay]))
    target = targets[0]
    assert client.get(LIST).status_code == 200
    page = client.get(f"{LIST}{target.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"{LIST}{target.pk}/change/", {"name": "evil", "host": "203.0.113.9", "port": "22",
                                                      "relays": [str(relay.pk)]}).status_code == 403
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.post(f"{LIST}{target.pk}/pin/", {"fingerprint": "SHA256:x"}).status_code == 404
    assert SSHTarget.objects.get(pk=target.pk).host == "web-01.lan"


def test_a_stranger_sees_no_targets(make_operator, targets):
    other = RelayAssignment.issue(machine_id="elsewhere", name="elsewhere").relay
    client = client_for(make_operator("stranger", configure=[other]))
    assert "web-01" not in client.get(LIST).content.decode()
    assert client.get(f"{LIST}{targets[0].pk}/change/").status_code in (302, 404)
    assert client.post(f"{LIST}{targets[0].pk}/test/").status_code == 404


def test_test_connection_from_the_admin_queues_a_probe(admin_client_, relay, targets):
    from tests.conftest import mark_online

    mark_online(relay)
    target = targets[0]
    response = admin_client_.post(f"{LIST}{target.pk}/test/")
    assert response.status_code == 302
    target.refresh_from_db()
    probe = target.last_probe
    assert (probe.kind, probe.command, probe.target_host, probe.target_name) == ("probe", "true", "web-01.lan",
                                                                                 "web-01")
    assert probe.to_wire()["probe"] is True
    page = admin_client_.get(f"{LIST}{target.pk}/change/").content.decode()
    assert 'id="rh-probe"' in page and "pending" in page


def test_the_relay_page_lists_its_targets(admin_client_, relay, targets):
    page = admin_client_.get(f"/admin/assignments/relayassignment/{relay.pk}/change/").content.decode()
    assert 'id="rh-relay-targets"' in page
    assert all(name in page for name in ("web-01", "db-01", "web-02"))
