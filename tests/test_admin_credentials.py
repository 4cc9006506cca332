"""A shared credential's value is write-only in the admin, and saving queues it to the assigned relays."""

from __future__ import annotations

import pytest
from django.test import Client

from configpush.models import ConfigPush
from credentials.models import SharedCredential

pytestmark = pytest.mark.django_db
SENTINEL = "s3ntinel-Value-7f3a91"
ADD = "/admin/credentials/sharedcredential/add/"


def test_the_value_is_never_rendered_back(admin_client_, relay):
    invalid = admin_client_.post(ADD, {"name": "", "credential_type": "password", "value": SENTINEL})
    assert invalid.status_code == 200 and invalid.context["adminform"].form.errors
    assert SENTINEL not in invalid.content.decode()

    created = admin_client_.post(ADD, {"name": "db", "credential_type": "password", "target_host": "db.internal",
                                       "value": SENTINEL,
                                       "assigned_relays": [relay.pk]})
    assert created.status_code == 302
    credential = SharedCredential.objects.get()
    assert credential.get_value() == SENTINEL

    change = f"/admin/credentials/sharedcredential/{credential.pk}/change/"
    pages = [change, "/admin/credentials/sharedcredential/", f"{change}../history/", "/admin/",
             "/admin/configpush/configpush/", f"/admin/configpush/configpush/{ConfigPush.objects.get().pk}/change/"]
    for page in pages:
        body = admin_client_.get(page, follow=True).content.decode()
        assert SENTINEL not in body, page
    rerendered = admin_client_.post(change, {"name": "", "credential_type": "password", "value": SENTINEL})
    assert SENTINEL not in rerendered.content.decode()
    assert 'name="value"' in rerendered.content.decode()


def test_saving_queues_a_push_per_assigned_relay(admin_client_, admin_user_api, issue_relay):
    a, b = issue_relay("a", "relay-a").relay, issue_relay("b", "relay-b").relay

    admin_client_.post(ADD, {"name": "db", "credential_type": "password", "target_host": "db.internal",
                             "value": SENTINEL,
                             "assigned_relays": [a.pk, b.pk]})

    pushes = ConfigPush.objects.filter(push_type="credential")
    assert {push.relay for push in pushes} == {a, b}
    assert all(push.created_by == admin_user_api and SENTINEL not in str(push.payload) for push in pushes)


def test_editing_without_a_new_value_keeps_the_value(admin_client_, relay):
    admin_client_.post(ADD, {"name": "db", "credential_type": "password", "target_host": "db.internal",
                             "value": SENTINEL})
    credential = SharedCredential.objects.get()

    admin_client_.post(f"/admin/credentials/sharedcredential/{credential.pk}/change/",
                       {"name": "db", "credential_type": "password", "target_host": "db-2.internal",
                        "assigned_relays": [relay.pk]})

    credential.refresh_from_db()
    assert credential.get_value() == SENTINEL and credential.target_host == "db-2.internal"
    assert ConfigPush.objects.get().payload["targetHost"] == "db-2.internal"


def test_a_new_credential_needs_a_value(admin_client_):
    response = admin_client_.post(ADD, {"name": "db", "credential_type": "password", "target_host": "db.internal",
                                        "value": ""})
    assert response.context["adminform"].form.errors == {"value": ["A new credential needs a value."]}


def test_assignments_to_relays_the_editor_cannot_see_are_kept(issue_relay, make_operator):
    from django.contrib.auth.models import Permission

    a, b = issue_relay("a", "relay-a").relay, issue_relay("b", "relay-b").relay
    credential = SharedCredential(name="db", credential_type="password", target_host="db.internal")
    credential.set_value(SENTINEL)
    credential.save()
    credential.assigned_relays.set([a, b])
    editor = make_operator(configure=[a])
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["view_sharedcredential",
                                                                         "change_sharedcredential"]))
    client = Client()
    client.force_login(editor)
    change = f"/admin/credentials/sharedcredential/{credential.pk}/change/"

    assert "relay-b" not in client.get(change).content.decode()
    client.post(change, {"name": "db", "credential_type": "password", "target_host": "db.internal",
                         "assigned_relays": []})

    assert list(credential.assigned_relays.all()) == [b]
