"""Beat sweeps, called directly; a second run changes nothing (SPEC §5)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from assignments import tasks as relay_tasks
from assignments.models import MetricSample, RelayEvent, RelayStatus
from commands import tasks as command_tasks
from commands.models import Command, OutputChunk
from configpush import tasks as push_tasks
from configpush.models import ConfigPush


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def snapshot():
    return (list(Command.objects.order_by("pk").values()), list(RelayEvent.objects.values()),
            list(ConfigPush.objects.order_by("pk").values()))


def run_twice(task):
    first = task()
    before = snapshot()
    assert task() == 0
    assert snapshot() == before
    return first


def test_claimed_or_executing_past_timeout_plus_grace_times_out(relay, make_command):
    overdue, running, fresh = make_command(timeout_ms=1000), make_command(timeout_ms=1000), make_command()
    for command in (overdue, running, fresh):
        command.claim(relay)
    running.start(relay, 1)
    Command.objects.filter(pk__in=[overdue.pk, running.pk]).update(deadline_at=ago(seconds=31))
    assert run_twice(command_tasks.expire_commands) == 2
    for command in (overdue, running):
        command.refresh_from_db()
        assert (command.status, command.error) == ("timeout", "execution timed out")
    assert Command.objects.get(pk=fresh.pk).status == "claimed"


def test_within_grace_is_left_alone(relay, make_command):
    command = make_command(timeout_ms=1000)
    command.claim(relay)
    Command.objects.filter(pk=command.pk).update(deadline_at=ago(seconds=5))
    assert command_tasks.expire_commands() == 0


def test_pending_past_the_queue_ttl_times_out(settings, make_command):
    settings.RELAYHUB = {**settings.RELAYHUB, "QUEUE_TTL_S": 600}
    stale, recent = make_command(), make_command()
    Command.objects.filter(pk=stale.pk).update(created_at=ago(seconds=601))
    assert run_twice(command_tasks.expire_commands) == 1
    stale.refresh_from_db()
    assert (stale.status, stale.error) == ("timeout", "not claimed within 600 s")
    assert Command.objects.get(pk=recent.pk).status == "pending"


def test_sweeps_are_bounded_by_batch_size(settings, relay, make_command):
    settings.RELAYHUB = {**settings.RELAYHUB, "SWEEP_BATCH": 2}
    for _ in range(3):
        make_command()
    Command.objects.update(created_at=ago(days=2))
    assert command_tasks.expire_commands() == 2
    assert command_tasks.expire_commands() == 1


def go_silent(relay, seconds=91):
    RelayStatus.objects.filter(pk=relay.pk).update(last_heartbeat_at=ago(seconds=seconds))


def test_stale_heartbeat_writes_heartbeat_lost_once_and_times_out_held_commands(relay, relay_client, make_command):
    relay_client.post("/relay/heartbeat")
    held, other = make_command(), make_command(machine_id="elsewhere")
    held.claim(relay)
    go_silent(relay)
    assert run_twice(relay_tasks.mark_lost_relays) == 2
    status = RelayStatus.objects.get(pk=relay.pk)
    assert status.last_connection_event == "heartbeat_lost" and not status.is_online
    assert list(relay.events.values_list("kind", flat=True)) == ["heartbeat_lost", "connected"]
    held.refresh_from_db()
    assert (held.status, held.error) == ("timeout", "relay lost")
    assert Command.objects.get(pk=other.pk).status == "pending"


def test_a_relay_that_comes_back_is_connected_again(relay, relay_client):
    relay_client.post("/relay/heartbeat")
    go_silent(relay)
    relay_tasks.mark_lost_relays()
    relay_client.post("/relay/heartbeat")
    assert RelayStatus.objects.get(pk=relay.pk).last_connection_event == "connected"
    assert list(relay.events.values_list("kind", flat=True)) == ["connected", "heartbeat_lost", "connected"]


def test_live_relay_is_not_marked_lost(relay, relay_client):
    relay_client.post("/relay/heartbeat")
    go_silent(relay, seconds=30)
    assert relay_tasks.mark_lost_relays() == 0


def test_unacked_push_goes_back_to_pending_then_fails_after_n_tries(settings, relay, relay_client):
    settings.RELAYHUB = {**settings.RELAYHUB, "PUSH_MAX_TRIES": 2, "PUSH_ACK_TIMEOUT_S": 60}
    push = ConfigPush.objects.create(relay=relay, push_type="metrics_interval", payload={"intervalMs": 5000})
    for attempt in (1, 2):
        assert len(relay_client.get("/relay/config-pushes").json()["configPushes"]) == 1
        ConfigPush.objects.filter(pk=push.pk).update(sent_at=ago(seconds=61))
        assert run_twice(push_tasks.requeue_unacked_pushes) == 1
        push.refresh_from_db()
        assert push.tries == attempt
        assert push.status == ("pending" if attempt == 1 else "failed")
    assert push.error_message == "not acknowledged after 2 deliveries"


def test_retention_prunes_old_chunks_events_and_samples(relay, make_command):
    old, recent = make_command(), make_command()
    for command in (old, recent):
        command.claim(relay)
        OutputChunk.objects.create(command=command, stream="stdout", offset=0, data="x")
        command.finish(relay, 1, status="completed")
    Command.objects.filter(pk=old.pk).update(completed_at=ago(hours=25))
    RelayEvent.objects.create(relay=relay, kind="connected", created_at=ago(days=91))
    RelayEvent.objects.create(relay=relay, kind="connected")
    MetricSample.objects.create(relay=relay, metrics={}, created_at=ago(days=8))
    MetricSample.objects.create(relay=relay, metrics={})
    assert command_tasks.prune_output() == 1
    assert relay_tasks.prune_relay_history() == 2
    assert command_tasks.prune_output() == 0 and relay_tasks.prune_relay_history() == 0
    assert list(OutputChunk.objects.values_list("command_id", flat=True)) == [recent.pk]
    assert RelayEvent.objects.count() == 1 and MetricSample.objects.count() == 1
    assert Command.objects.get(pk=old.pk).status == "completed"


@pytest.mark.django_db
def test_beat_schedule_names_real_tasks():
    from django.conf import settings
    from django_celery_beat.schedulers import ModelEntry

    from relayhub.celery import app

    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks
        # As beat's database scheduler stores and sends it: each sweep expires before the next one is due.
        sent = ModelEntry.from_entry(name, app=app, **entry)
        assert sent.task == entry["task"] and 0 < sent.options["expires"] <= entry["schedule"]
