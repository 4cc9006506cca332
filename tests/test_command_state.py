"""The Command state machine refuses illegal moves; terminal states never change."""

import pytest
from django.db import transaction

from commands import notify
from commands.choices import CommandStatus
from commands.models import Command, IllegalTransition


def test_happy_path(relay, make_command):
    command = make_command()
    assert command.claim(relay)
    command.start(relay, attempt=1)
    assert command.status == "executing" and command.started_at
    command.finish(relay, 1, status=CommandStatus.COMPLETED, exit_code=0, output="ok")
    assert command.status == "completed" and command.completed_at


def test_claim_only_once(relay, make_command):
    command = make_command()
    assert command.claim(relay)
    assert not command.claim(relay)
    assert command.attempt == 1


def test_start_needs_the_current_attempt(relay, make_command):
    command = make_command()
    command.claim(relay)
    with pytest.raises(IllegalTransition):
        command.start(relay, attempt=2)


def test_cannot_finish_a_pending_command(relay, make_command):
    with pytest.raises(IllegalTransition, match="pending"):
        make_command().finish(relay, 0, status=CommandStatus.COMPLETED)


def test_finish_needs_a_final_status(relay, make_command):
    command = make_command()
    command.claim(relay)
    with pytest.raises(IllegalTransition):
        command.finish(relay, 1, status=CommandStatus.PENDING)


def test_terminal_states_never_change(relay, make_command):
    command = make_command()
    command.claim(relay)
    command.finish(relay, 1, status=CommandStatus.FAILED, exit_code=1)
    with pytest.raises(IllegalTransition):
        command.finish(relay, 1, status=CommandStatus.COMPLETED)
    with pytest.raises(IllegalTransition):
        command.cancel()
    assert not command.expire(CommandStatus.active(), "late")
    assert not command.claim(relay)
    command.refresh_from_db()
    assert (command.status, command.exit_code) == ("failed", 1)


def test_cancel_of_a_pending_command_is_immediate(make_command):
    command = make_command()
    command.cancel()
    assert command.status == "cancelled"


def test_cancel_of_a_running_command_asks_the_relay(relay, make_command):
    command = make_command()
    command.claim(relay)
    command.cancel()
    assert command.status == "claimed" and command.cancel_requested


def test_another_relays_claim_cannot_be_finished(relay, issue_relay, make_command):
    rival = issue_relay(name="rival").relay
    command = make_command()
    command.claim(relay)
    with pytest.raises(IllegalTransition):
        command.finish(rival, 1, status=CommandStatus.COMPLETED)


def test_a_relay_cannot_claim_another_machines_command(relay, make_command):
    assert not make_command(machine_id="other").claim(relay)


@pytest.mark.django_db(transaction=True)
def test_queueing_through_the_orm_wakes_waiters_on_commit():
    topic = notify.machine_topic("wake-machine")
    event = notify.notifier.subscribe(topic)
    try:
        with transaction.atomic():
            Command.objects.create(machine_id="wake-machine", command="true", target_type="local", timeout_ms=1000)
            assert not event.is_set()
        assert event.wait(1)
    finally:
        notify.notifier.unsubscribe(topic, event)
