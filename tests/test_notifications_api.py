"""Notifications through the REST API and the admin: model permissions, validation, and a secret never shown."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from assignments import tasks as relay_tasks
from assignments.models import RelayStatus
from notifications.models import Channel, Delivery, Event, Rule
from runbooks.models import JobTemplate
from tests.conftest import api_client_for
from tests.webhook_receiver import WebhookReceiver, eager_celery

pytestmark = pytest.mark.django_db
SENTINEL = "sentinel-hmac-key-4f1e9a7c2b"
ROUTES = ["/api/v1/notification-channels/", "/api/v1/notification-rules/", "/api/v1/notification-deliveries/"]


@pytest.fixture
def receiver(settings):
    with WebhookReceiver() as running, eager_celery():
        settings.RELAYHUB = {**settings.RELAYHUB, "NOTIFY_ALLOWED_HOSTS": [running.host]}
        yield running


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="pw-staff-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="notifications",
                                                        codename__in=codenames))
    return User.objects.get(pk=user.pk)


def channel_body(receiver, **fields) -> dict:
    return {"name": "ops", "kind": "webhook", "url": receiver.url, "secret": SENTINEL, **fields}


def test_without_the_model_permissions_everything_is_refused(receiver):
    channel = Channel.objects.create(name="mail", kind="email", email_to="ops@example.com")
    client = api_client_for(staff("nobody"))
    for route in ROUTES:
        assert client.get(route).status_code == 403, route
    assert client.get(f"{ROUTES[0]}{channel.pk}/").status_code == 403
    assert client.post(ROUTES[0], channel_body(receiver), format="json").status_code == 403
    assert client.post(f"{ROUTES[0]}{channel.pk}/test/").status_code in (403, 404)
    browser = Client()
    browser.force_login(User.objects.get(username="nobody"))
    for model in ("channel", "rule", "delivery"):
        assert browser.get(f"/admin/notifications/{model}/").status_code == 403


def test_viewers_read_and_only_editors_write(receiver):
    viewer = api_client_for(staff("viewer", "view_channel", "view_rule", "view_delivery"))
    editor = api_client_for(staff("editor", "view_channel", "add_channel", "change_channel", "view_delivery"))
    created = editor.post(ROUTES[0], channel_body(receiver), format="json")
    assert created.status_code == 201, created.json()
    channel_id = created.json()["id"]
    assert created.json()["has_secret"] is True and "secret" not in created.json()
    assert viewer.get(ROUTES[0]).json()["results"][0]["name"] == "ops"
    assert viewer.post(ROUTES[0], channel_body(receiver, name="other"), format="json").status_code == 403
    assert viewer.post(f"{ROUTES[0]}{channel_id}/test/").status_code == 403
    assert editor.post(f"{ROUTES[0]}{channel_id}/test/").status_code == 202
    (received,) = receiver.wait_for(1)
    assert received.signed_with(SENTINEL)
    assert viewer.get(ROUTES[2]).json()["results"][0]["status"] == "succeeded"
    assert editor.post(ROUTES[2], {}, format="json").status_code in (403, 405)


def test_bad_channels_are_400_with_the_reason_and_never_the_secret(admin_api, receiver, settings):
    cases = [
        (channel_body(receiver, url="http://169.254.169.254/latest/meta-data/"), "url", "cloud metadata"),
        (channel_body(receiver, url="http://10.0.0.8/hook"), "url", "private"),
        (channel_body(receiver, url="ftp://example.com/"), "url", "http"),
        (channel_body(receiver, secret="short"), "secret", "at least"),
        ({**channel_body(receiver), "secret": ""}, "secret", "needs a secret"),
        ({"name": "m", "kind": "email", "email_to": "not an address"}, "email_to", "not an email address"),
    ]
    for body, field, words in cases:
        answer = admin_api.post(ROUTES[0], body, format="json")
        assert answer.status_code == 400 and words in str(answer.json()["fields"][field]), (body, answer.json())
        assert "short" not in answer.content.decode() or field != "secret"
        assert SENTINEL not in answer.content.decode()
    assert not Channel.objects.exists()


def test_rules_are_checked(admin_api, receiver):
    channel = Channel.objects.create(name="mail", kind="email", email_to="ops@example.com")
    JobTemplate.objects.create(name="deploy", command="deploy", selector="env=prod")
    bad = [
        ({"event": "command_failure_repeated"}, "threshold"),
        ({"event": "command_failed", "threshold": 3}, "threshold"),
        ({"event": "command_failure_repeated", "threshold": 1}, "threshold"),
        ({"event": "relay_heartbeat_lost", "selector": "env in (prod"}, "selector"),
        ({"event": "relay_heartbeat_lost", "template_name": "deploy"}, "template_name"),
        ({"event": "batch_finished", "template_name": "nope"}, "template_name"),
        ({"event": "scheduled_run_missed", "selector": "env=prod"}, "selector"),
        ({"event": "test"}, "event"),
    ]
    for fields, field in bad:
        answer = admin_api.post(ROUTES[1], {"name": "r", "channel": str(channel.pk), **fields}, format="json")
        assert answer.status_code == 400 and field in answer.json()["fields"], (fields, answer.json())
    good = admin_api.post(ROUTES[1], {"name": "deploys", "channel": str(channel.pk), "event": "batch_finished",
                                      "template_name": "deploy", "selector": "env=prod"}, format="json")
    assert good.status_code == 201 and Rule.objects.get().created_by.username == "root"


def test_the_secret_is_never_shown_stored_plain_logged_or_sent(admin_api, admin_client_, receiver, relay, caplog,
                                                              django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    channel_id = admin_api.post(ROUTES[0], channel_body(receiver), format="json").json()["id"]
    channel = Channel.objects.get(pk=channel_id)
    assert SENTINEL.encode() not in bytes(channel.secret_ciphertext) and channel.get_secret() == SENTINEL
    admin_api.post(ROUTES[1], {"name": "lost", "event": "relay_heartbeat_lost", "channel": channel_id}, format="json")
    receiver.statuses = [500]
    RelayStatus.objects.filter(pk=relay.pk).update(last_heartbeat_at="2000-01-01T00:00:00Z",
                                                   last_connection_event="connected")
    with django_capture_on_commit_callbacks(execute=True):
        relay_tasks.mark_lost_relays()
    received = receiver.wait_for(2)
    assert all(item.signed_with(SENTINEL) and SENTINEL.encode() not in item.body for item in received)
    Channel.objects.filter(pk=channel_id).update(url="http://127.0.0.1:1/refused")  # a refusal and its error
    admin_client_.post("/admin/notifications/channel/", {"action": "send_test", "_selected_action": [channel_id]})
    assert list(Delivery.objects.order_by("pk").values_list("status", flat=True)) == [
        "retrying", "succeeded", "refused"]

    pages = [admin_api.get(route).content for route in ROUTES]
    pages += [admin_api.get(f"{ROUTES[0]}{channel_id}/").content]
    for path in ["/admin/notifications/channel/", f"/admin/notifications/channel/{channel_id}/change/",
                 "/admin/notifications/delivery/", "/admin/notifications/rule/", "/admin/",
                 f"/admin/notifications/delivery/{Delivery.objects.first().pk}/change/"]:
        page = admin_client_.get(path)
        assert page.status_code == 200, path
        pages.append(page.content)
    stored = [str(row) for row in Delivery.objects.values()] + [str(row) for row in Event.objects.values()]
    assert b"set (never shown)" in pages[5]
    for text in [*pages, *(s.encode() for s in stored), caplog.text.encode()]:
        assert SENTINEL.encode() not in text
    assert "notification relay_heartbeat_lost to channel 'ops': attempt 1 retrying" in caplog.text


def test_the_admin_form_refuses_a_forbidden_url_and_keeps_no_secret_in_the_page(admin_client_, settings):
    page = admin_client_.post("/admin/notifications/channel/add/", {
        "name": "meta", "kind": "webhook", "url": "http://169.254.169.254/", "email_to": "", "secret": SENTINEL,
        "enabled": "on"})
    assert page.status_code == 200 and b"cloud metadata" in page.content
    assert SENTINEL.encode() not in page.content and not Channel.objects.exists()
    settings.RELAYHUB = {**settings.RELAYHUB, "NOTIFY_ALLOWED_HOSTS": ["169.254.169.254"]}
    page = admin_client_.post("/admin/notifications/channel/add/", {
        "name": "meta", "kind": "webhook", "url": "http://169.254.169.254/", "email_to": "", "secret": SENTINEL,
        "enabled": "on"})
    assert page.status_code == 302 and Channel.objects.get().get_secret() == SENTINEL


def test_secrets_are_bound_to_their_channel_and_rotate_with_the_credential_keys(settings):
    import base64
    import io
    import os

    from django.core.management import call_command

    from credentials.crypto import DecryptionError

    def ring(*ids: str) -> str:
        return ",".join(f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}" for key_id in ids)

    old = ring("old")
    settings.CREDENTIAL_KEYS = old
    first, second = (Channel(name=name, kind="webhook", url="https://hooks.example.com/x") for name in "ab")
    for channel in (first, second):
        channel.set_secret(f"{SENTINEL}-{channel.name}")
        channel.save()
    second.secret_key_id, second.secret_ciphertext = first.secret_key_id, first.secret_ciphertext
    second.save()
    with pytest.raises(DecryptionError):
        Channel.objects.get(pk=second.pk).get_secret()

    settings.CREDENTIAL_KEYS = ring("new") + "," + old
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_channel_secrets", stdout=out, stderr=err)
    assert "Re-encrypted 1" in out.getvalue() and "set them again: b" in err.getvalue()
    settings.CREDENTIAL_KEYS = settings.CREDENTIAL_KEYS.split(",")[0]
    stored = Channel.objects.get(pk=first.pk)
    assert stored.secret_key_id == "new" and stored.get_secret() == f"{SENTINEL}-a"
    assert SENTINEL not in repr(stored) and SENTINEL not in str(stored)


def test_old_events_and_their_deliveries_are_pruned(settings):
    from datetime import timedelta

    from django.utils import timezone

    from notifications.tasks import prune_notifications

    channel = Channel.objects.create(name="mail", kind="email", email_to="ops@example.com")
    old, new = (Event.objects.create(kind="test", payload={"type": "test"}) for _ in range(2))
    for event in (old, new):
        Delivery.objects.create(event=event, channel=channel, attempt=1, status="succeeded")
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert prune_notifications() == 2  # the event and its delivery
    assert list(Event.objects.all()) == [new] and Delivery.objects.get().event == new
