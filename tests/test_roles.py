"""Three roles per relay: viewer, runner, configurer. Running never grants changing what a relay trusts."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from configpush.models import ConfigPush
from credentials.models import SharedCredential
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db
SENTINEL = "roles-sentinel-value-4b1d"
PUSHES = "/api/v1/config-pushes/"
CREDENTIALS = "/api/v1/shared-credentials/"
ATTACK = {"push_type": "ssh_targets",
          "payload": {"targets": [{"host": "203.0.113.7", "port": 22,
                                   "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}]}}


def with_credential_perms(user):
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_sharedcredential", "add_sharedcredential", "change_sharedcredential"]))
    return user


def held_credential(*relays, target_host="db.internal") -> SharedCredential:
    credential = SharedCredential(name="db", credential_type="password", target_host=target_host)
    credential.set_value(SENTINEL)
    credential.save()
    credential.assigned_relays.set(relays)
    return credential


@pytest.mark.parametrize("role", ["view", "run"])
def test_viewers_and_runners_cannot_push_configuration(make_operator, relay, role):
    client = api_client_for(make_operator(**{role: [relay]}))
    response = client.post(PUSHES, {"relay": str(relay.pk), **ATTACK}, format="json")
    assert response.status_code == 403
    assert "configure" in response.json()["error"]
    assert not ConfigPush.objects.exists()


def test_a_configurer_pushes_configuration(make_operator, relay):
    client = api_client_for(make_operator(configure=[relay]))
    assert client.post(PUSHES, {"relay": str(relay.pk), **ATTACK}, format="json").status_code == 201
    assert ConfigPush.objects.get().payload["targets"][0]["host"] == "203.0.113.7"


def test_a_runner_cannot_put_a_credential_on_their_relay(make_operator, relay):
    client = api_client_for(with_credential_perms(make_operator(run=[relay])))
    response = client.post(CREDENTIALS, {"name": "mine", "credential_type": "password", "target_host": "x.example",
                                         "value": SENTINEL, "assigned_relays": [str(relay.pk)]}, format="json")
    assert response.status_code == 403 and "configure_relay" in response.json()["error"]
    assert not SharedCredential.objects.exists() and not ConfigPush.objects.exists()


def test_a_runner_cannot_rebind_a_credential_their_relay_holds(make_operator, relay):
    """The attack: move a credential's binding to a host the runner controls, then run ssh there."""
    credential = held_credential(relay)
    client = api_client_for(with_credential_perms(make_operator(run=[relay])))
    for change in ({"target_host": "attacker.example"}, {"value": "new-value"}, {"credential_type": "ssh_key"}):
        response = client.patch(f"{CREDENTIALS}{credential.pk}/", change, format="json")
        assert response.status_code == 403, change
    credential.refresh_from_db()
    assert credential.target_host == "db.internal" and credential.get_value() == SENTINEL
    assert not ConfigPush.objects.exists()


def test_a_configurer_assigns_and_rebinds(make_operator, relay):
    client = api_client_for(with_credential_perms(make_operator(configure=[relay])))
    created = client.post(CREDENTIALS, {"name": "db", "credential_type": "password", "target_host": "db:2222",
                                        "value": SENTINEL, "assigned_relays": [str(relay.pk)]}, format="json")
    assert created.status_code == 201
    assert client.patch(f"{CREDENTIALS}{created.json()['id']}/", {"target_host": "db2"},
                        format="json").status_code == 200
    assert [push.payload["targetHost"] for push in ConfigPush.objects.order_by("created_at")] == ["db2"]


def test_hidden_assignments_are_neither_shown_nor_dropped(make_operator, issue_relay):
    mine, hidden = issue_relay("m-1", "mine").relay, issue_relay("m-2", "hidden").relay
    credential = held_credential(mine, hidden)
    client = api_client_for(with_credential_perms(make_operator(configure=[mine])))
    url = f"{CREDENTIALS}{credential.pk}/"

    assert client.get(url).json()["assigned_relays"] == [str(mine.pk)]
    assert client.get(CREDENTIALS).json()["results"][0]["assigned_relays"] == [str(mine.pk)]
    assert str(hidden.pk) not in client.get(CREDENTIALS).content.decode()

    assert client.patch(url, {"assigned_relays": []}, format="json").status_code == 200
    assert list(credential.assigned_relays.all()) == [hidden]
    assert client.patch(url, {"assigned_relays": [str(mine.pk)]}, format="json").status_code == 200
    assert set(credential.assigned_relays.all()) == {mine, hidden}
    # Changing what the hidden relay holds needs configure_relay there too.
    assert client.patch(url, {"value": "other"}, format="json").status_code == 403
    credential.refresh_from_db()
    assert credential.get_value() == SENTINEL


def test_a_visible_assignment_the_user_cannot_configure_is_not_removed(make_operator, issue_relay):
    mine, seen = issue_relay("m-1", "mine").relay, issue_relay("m-2", "seen").relay
    credential = held_credential(mine, seen)
    operator = with_credential_perms(make_operator(configure=[mine], run=[seen]))
    response = api_client_for(operator).patch(f"{CREDENTIALS}{credential.pk}/", {"assigned_relays": [str(mine.pk)]},
                                              format="json")
    assert response.status_code == 403 and "'seen'" in response.json()["error"]
    assert set(credential.assigned_relays.all()) == {mine, seen}


@pytest.mark.parametrize("target_host", ["db:0", "db:65536", "db:\u00b2", "db:\u0662\u0662", "a b", "[zz]:1", "db:"])
def test_the_binding_is_host_port_in_ascii(admin_api, relay, target_host):
    response = admin_api.post(CREDENTIALS, {"name": "db", "credential_type": "password", "target_host": target_host,
                                            "value": SENTINEL}, format="json")
    assert response.status_code == 400 and "target_host" in response.json()["fields"]


def test_an_ssh_credential_must_be_bound(admin_api):
    response = admin_api.post(CREDENTIALS, {"name": "db", "credential_type": "ssh_key", "value": SENTINEL},
                              format="json")
    assert response.status_code == 400 and "bound" in str(response.json()["fields"]["target_host"])
    assert admin_api.post(CREDENTIALS, {"name": "token", "credential_type": "api_key", "value": SENTINEL},
                          format="json").status_code == 201


def test_the_admin_refuses_a_runner_the_credential_assignment(make_operator, relay):
    credential = held_credential()
    client = Client()
    client.force_login(with_credential_perms(make_operator(run=[relay])))
    response = client.post(f"/admin/credentials/sharedcredential/{credential.pk}/change/",
                           {"name": "db", "credential_type": "password", "target_host": "db.internal",
                            "assigned_relays": [relay.pk]})
    assert response.status_code == 200
    assert "configure_relay" in str(response.context["adminform"].form.errors["assigned_relays"])
    assert not credential.assigned_relays.exists() and not ConfigPush.objects.exists()


def test_configure_relay_is_granted_from_the_relays_permission_page(admin_client_, make_operator, relay):
    operator = make_operator()
    base = f"/admin/assignments/relayassignment/{relay.pk}/permissions/"
    admin_client_.post(f"{base}user-manage/{operator.pk}/", {"permissions": ["view_relay", "configure_relay"]})
    operator = type(operator).objects.get(pk=operator.pk)
    assert operator.has_perm("assignments.configure_relay", relay)
    assert not operator.has_perm("assignments.run_command", relay)
