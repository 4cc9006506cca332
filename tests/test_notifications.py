"""Notifications end to end in one process: real signals, real HTTP to a receiver on 127.0.0.1, Celery eager."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from assignments import tasks as relay_tasks
from assignments.models import RelayAssignment, RelayStatus
from commands import batches
from commands import tasks as command_tasks
from commands.models import Command
from notifications import delivering, tasks
from notifications.models import Channel, Delivery, Event, Rule
from runbooks.models import JobTemplate, Launch
from tests.conftest import client_for, mark_online
from tests.webhook_receiver import WebhookReceiver, eager_celery

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "whsec-test-0123456789abcdef"


@pytest.fixture
def eager():
    with eager_celery():
        yield


@pytest.fixture
def receiver(settings, eager):
    with WebhookReceiver() as running:
        settings.RELAYHUB = {**settings.RELAYHUB, "NOTIFY_ALLOWED_HOSTS": [running.host]}
        yield running


@pytest.fixture
def webhook(receiver) -> Channel:
    channel = Channel(name="ops hook", kind="webhook", url=receiver.url)
    channel.set_secret(SECRET)
    channel.full_clean()
    channel.save()
    return channel


def rule(channel: Channel, event: str, **filters) -> Rule:
    made = Rule(name=event, event=event, channel=channel, **filters)
    made.full_clean()
    made.save()
    return made


def lose(relay: RelayAssignment) -> None:
    RelayStatus.objects.filter(pk=relay.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=1),
                                                   last_connection_event="connected")
    relay_tasks.mark_lost_relays()


def test_a_lost_relay_and_its_recovery_arrive_signed(webhook, receiver, issued):
    relay = issued.relay
    rule(webhook, "relay_heartbeat_lost")
    rule(webhook, "relay_recovered")
    RelayStatus.objects.get(pk=relay.pk).record_sign_of_life(timezone.now())  # first connection: no recovery
    assert receiver.received == []

    lose(relay)
    client_for(issued).post("/relay/heartbeat", {}, format="json")  # the relay is back

    lost, back = receiver.wait_for(2)
    assert lost.signed_with(SECRET) and back.signed_with(SECRET)
    assert not lost.signed_with(SECRET + "x")
    assert lost.headers["x-relayhub-event"] == "relay_heartbeat_lost" and lost.path == "/hook"
    assert lost.json["relay"] == {"id": str(relay.pk), "name": relay.name, "machine_id": relay.machine_id}
    assert lost.json["type"] == "relay_heartbeat_lost" and lost.json["time"].endswith("Z")
    assert back.json["type"] == "relay_recovered" and back.json["down_s"] >= 0
    assert lost.headers["content-type"] == "application/json"
    assert [d.status for d in Delivery.objects.order_by("pk")] == ["succeeded", "succeeded"]


def test_a_failed_command_arrives_and_a_500_is_retried(webhook, receiver, issued):
    relay = issued.relay
    rule(webhook, "command_failed")
    command = Command.objects.create(machine_id=relay.machine_id, command="systemctl restart nginx", timeout_ms=5000)
    assert command.claim(relay)
    receiver.statuses = [500]

    answer = client_for(issued).post("/relay/commands/result", {
        "commandId": str(command.pk), "attempt": 1, "success": False, "exitCode": 3, "output": "SECRET-OUTPUT",
        "error": "x" * 500}, format="json")
    assert answer.status_code == 200

    first, second = receiver.wait_for(2)
    assert first.answered == 500 and second.answered == 200 and first.body == second.body
    assert second.signed_with(SECRET)
    payload = second.json
    assert payload["command"]["id"] == command.pk and payload["command"]["status"] == "failed"
    assert payload["command"]["exit_code"] == 3 and len(payload["command"]["error"]) == 200
    assert "SECRET-OUTPUT" not in second.body.decode()
    attempts = list(Delivery.objects.order_by("attempt").values_list("attempt", "status", "http_status"))
    assert attempts == [(1, "retrying", 500), (2, "succeeded", 200)]
    assert "500" in Delivery.objects.get(attempt=1).error


def test_a_timeout_by_the_sweep_is_a_failure_too(webhook, receiver, relay):
    rule(webhook, "command_failed")
    command = Command.objects.create(machine_id=relay.machine_id, command="sleep 999", timeout_ms=1000)
    command.claim(relay)
    Command.objects.filter(pk=command.pk).update(deadline_at=timezone.now() - timedelta(minutes=5))
    command_tasks.expire_commands()
    (received,) = receiver.wait_for(1)
    assert received.json["command"]["status"] == "timeout"
    assert "timed out" in received.json["summary"]


def test_back_off_and_giving_up(webhook, receiver, relay, settings, monkeypatch):
    assert [delivering.retry_delay(n) for n in range(1, 5)] == [10, 30, 90, 270]
    countdowns = []
    real = tasks.deliver.apply_async
    monkeypatch.setattr(tasks.deliver, "apply_async",
                        lambda args, countdown=None: countdowns.append(countdown) or real(args))
    rule(webhook, "relay_heartbeat_lost")
    receiver.statuses = [500, 502, 503, 504, 500, 500]
    lose(relay)
    assert countdowns == [None, 10, 30, 90, 270]
    statuses = list(Delivery.objects.order_by("attempt").values_list("status", flat=True))
    assert statuses == ["retrying"] * 4 + ["failed"]
    assert len(receiver.received) == 5


def test_failing_n_times_in_a_row_is_told_once_per_run(webhook, receiver, relay):
    rule(webhook, "command_failure_repeated", threshold=3)

    def run(text: str, ok: bool) -> None:
        command = Command.objects.create(machine_id=relay.machine_id, command=text, timeout_ms=5000)
        command.claim(relay)
        command.finish(relay, 1, status="completed" if ok else "failed", exit_code=0 if ok else 1)

    for ok in (False, False, True, False, False):  # a success breaks the run: 2 in a row so far
        run("backup.sh", ok)
    run("other.sh", False)  # another command does not count
    assert receiver.received == []
    run("backup.sh", False)  # the third in a row
    run("backup.sh", False)  # the fourth: the same run, not told again
    (received,) = receiver.wait_for(1)
    assert received.json["times"] == 3 and received.json["command"]["command"] == "backup.sh"
    assert received.headers["x-relayhub-event"] == "command_failure_repeated"


def test_a_finished_batch_is_told_once_with_its_counts(webhook, receiver):
    relays = [RelayAssignment.issue(machine_id=f"m{n}", name=f"m{n}").relay for n in range(3)]
    mark_online(*relays)
    rule(webhook, "batch_finished")
    batch = batches.create(machine_ids=["m0", "m1", "m2"], command="uptime", timeout_ms=5000)
    for relay, code in zip(relays, (0, 0, 1)):
        command = batch.commands.get(machine_id=relay.machine_id)
        command.claim(relay)
        command.finish(relay, 1, status="completed" if code == 0 else "failed", exit_code=code)
    batch_events = receiver.of_type("batch_finished")
    assert len(batch_events) == 1
    payload = batch_events[0].json
    assert payload["batch"]["status"] == "failed" and payload["batch"]["counts"]["total"] == 3
    assert payload["batch"]["counts"]["completed"] == 2 and payload["batch"]["counts"]["failed_runs"] == 1


def test_rules_filter_by_relay_labels_and_template(webhook, receiver, issue_relay):
    prod, lab = issue_relay("prod-1", "prod-1").relay, issue_relay("lab-1", "lab-1").relay
    RelayAssignment.objects.filter(pk=prod.pk).update(labels={"env": "prod"})
    RelayAssignment.objects.filter(pk=lab.pk).update(labels={"env": "lab"})
    template = JobTemplate.objects.create(name="deploy", command="deploy", selector="env=prod")
    rule(webhook, "relay_heartbeat_lost", selector="env=prod")
    rule(webhook, "command_failed", relay=lab)
    rule(webhook, "batch_finished", template_name="deploy")

    lose(prod)
    lose(lab)
    mark_online(prod, lab)
    for relay, launched in ((prod, True), (lab, False)):
        batch = batches.create(machine_ids=[relay.machine_id], command="deploy", timeout_ms=5000)
        if launched:
            Launch.objects.create(template=template, batch=batch)
        command = batch.commands.get()
        command.claim(relay)
        command.finish(relay, 1, status="failed", exit_code=1)

    kinds = [(r.json["type"], (r.json.get("relay") or {}).get("name"), r.json.get("template"))
             for r in receiver.received]
    assert sorted(kinds, key=str) == sorted([("relay_heartbeat_lost", "prod-1", None),
                                             ("command_failed", "lab-1", None),
                                             ("batch_finished", None, "deploy")], key=str)


def test_slack_and_email_channels(receiver, relay, mailoutbox):
    slack = Channel.objects.create(name="slack", kind="slack", url=receiver.url)
    email = Channel.objects.create(name="mail", kind="email", email_to="ops@example.com, oncall@example.com")
    rule(slack, "relay_heartbeat_lost")
    rule(email, "relay_heartbeat_lost")
    lose(relay)
    (received,) = receiver.wait_for(1)
    assert received.json == {"text": f"relayhub: Relay {relay} lost its heartbeat"}
    assert "x-relayhub-signature" not in received.headers
    (message,) = mail.outbox
    assert message.subject == f"[relayhub] Relay {relay} lost its heartbeat"
    assert message.to == ["ops@example.com", "oncall@example.com"]
    assert '"type": "relay_heartbeat_lost"' in message.body


def test_disabled_rules_and_channels_send_nothing_and_a_test_reaches_the_channel(webhook, receiver, relay):
    rule(webhook, "relay_heartbeat_lost")
    Rule.objects.update(enabled=False)
    lose(relay)
    assert receiver.received == [] and not Event.objects.exists()

    tasks.send_test(webhook)
    (received,) = receiver.wait_for(1)
    assert received.json["type"] == "test" and received.signed_with(SECRET)
    Channel.objects.filter(pk=webhook.pk).update(enabled=False)
    tasks.send_test(Channel.objects.get(pk=webhook.pk))
    assert Delivery.objects.order_by("-pk").first().status == "skipped" and len(receiver.received) == 1


def test_approval_requested_and_scheduled_runs_never_started(webhook, receiver, relay, monkeypatch):
    """As the approvals and schedules work sends them: ``approval``, and ``run``, ``schedule`` and ``targets``
    (objects stand in for their models here), or the same as plain values."""
    import sys
    import types
    from types import SimpleNamespace

    from django.contrib.auth.models import User
    from django.dispatch import Signal

    from commands.signals import approval_requested
    from notifications import receivers

    template = JobTemplate.objects.create(name="nightly-backup", command="backup", selector="env=prod")
    other = JobTemplate.objects.create(name="other", command="true", selector="env=prod")
    rule(webhook, "approval_requested")
    rule(webhook, "scheduled_run_missed", template_name="nightly-backup")
    command = Command.objects.create(machine_id=relay.machine_id, command="reboot", timeout_ms=5000)
    alice = User.objects.create_user("alice")
    approval = SimpleNamespace(pk=7, command_id=command.pk, batch_id=None, requested_by=alice,
                               reasons=[f"relay '{relay.name}' requires approval"])
    approval_requested.send(sender=None, approval=approval)
    approval_requested.send(sender=None, approval=approval)  # the same approval: told once

    module = types.ModuleType("runbooks.signals")
    module.scheduled_run_never_started = Signal()
    monkeypatch.setitem(sys.modules, "runbooks.signals", module)
    assert receivers.connect_scheduled_runs()
    for name, made in (("nightly", template), ("hourly", other)):
        schedule = SimpleNamespace(pk=3, name=name, template=made)
        run = SimpleNamespace(pk=5 if name == "nightly" else 6, schedule=schedule, reason="no relay took it",
                              slot=timezone.now())
        module.scheduled_run_never_started.send(sender=None, run=run, schedule=schedule, targets=["web-1"])

    approval, missed = receiver.wait_for(2)
    assert approval.json["approval"]["requested_by"] == "alice" and "alice" in approval.json["summary"]
    assert approval.json["approval"]["command_ids"] == [command.pk]
    assert approval.json["approval"]["reasons"] == [f"relay '{relay.name}' requires approval"]
    schedule = missed.json["schedule"]
    assert schedule == {"id": 3, "name": "nightly", "run_id": 5, "due_at": schedule["due_at"],
                        "reason": "no relay took it", "targets": ["web-1"]}
    assert missed.json["template"] == "nightly-backup" and "nightly" in missed.json["summary"]
    assert len(receiver.received) == 2  # the hourly schedule's template is not the rule's


def test_a_real_approval_request_and_a_relay_not_fetching_are_sent(webhook, receiver, relay,
                                                                   django_capture_on_commit_callbacks):
    from assignments.models import ConnectionEvent, RelayEvent
    from commands import fetching

    rule(webhook, "approval_requested")
    rule(webhook, "relay_not_fetching")
    RelayAssignment.objects.filter(pk=relay.pk).update(requires_approval=True)
    mark_online(relay)
    long_ago = timezone.now() - timedelta(minutes=5)
    RelayEvent.objects.create(relay=relay, kind=ConnectionEvent.CONNECTED, created_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        held = Command.objects.create(machine_id=relay.machine_id, command="reboot", created_at=long_ago)
    assert held.status == "awaiting_approval"
    Command.objects.filter(pk=held.pk).update(status="pending")  # as if approved long ago, never fetched since
    with django_capture_on_commit_callbacks(execute=True):
        assert fetching.flag_not_fetching()

    requested, stuck = sorted(receiver.wait_for(2), key=lambda hit: hit.json["type"])
    assert requested.json["type"] == "approval_requested"
    assert requested.json["approval"]["command_ids"] == [held.pk]
    assert stuck.json["type"] == "relay_not_fetching" and stuck.json["relay"]["name"] == relay.name
    assert "not fetched commands since it connected" in stuck.json["summary"]
