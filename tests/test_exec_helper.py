"""exec() / exec_async(): wait by wake-up, and retry only what never ran (SPEC §4)."""

from __future__ import annotations

import threading

import pytest

from commands.execution import exec, exec_async  # noqa: A004
from commands.models import Command

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def answering_relay(relay_client):
    """Start a relay speaking the wire protocol: claim by long-poll, answer every command."""
    stop, threads = threading.Event(), []

    def start(**result) -> None:
        thread = threading.Thread(target=_answer, args=(relay_client, stop, result), daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(5)


def _answer(client, stop: threading.Event, result: dict) -> None:
    from django.db import connection

    try:
        while not stop.is_set():
            for command in client.post("/relay/commands/next", {"max": 5, "waitMs": 200},
                                       format="json").json()["commands"]:
                body = {"commandId": command["_id"], "attempt": command["attempt"], "success": True,
                        "output": f"ran {command['command']}\n", "exitCode": 0, "durationMs": 3, **result}
                client.post("/relay/commands/result", body, format="json")
    finally:
        connection.close()


def test_exec_returns_the_result(answering_relay):
    answering_relay()
    result = exec("machine-1", "uptime", timeout_ms=5_000)
    assert result.success and result.exit_code == 0 and result.output == "ran uptime\n"
    assert (result.status, result.attempts, result.timed_out, result.duration_ms) == ("completed", 1, False, 3)


def test_exec_reports_a_failure(answering_relay):
    answering_relay(success=False, exitCode=3, stderr="boom")
    result = exec("machine-1", "false")
    assert not result.success and result.exit_code == 3 and result.stderr == "boom"
    assert result.status == "failed"


def test_unclaimed_command_is_withdrawn_and_retried(db):
    result = exec("nobody-home", "true", claim_timeout_ms=100, retries=2, retry_delay_ms=10)
    assert result.timed_out and result.attempts == 3
    assert result.error == "not claimed within 100 ms"
    assert list(Command.objects.values_list("status", "attempt")) == [("cancelled", 0)] * 3


def test_should_retry_can_refuse(db):
    seen = []
    result = exec("nobody-home", "true", claim_timeout_ms=50, retries=5, retry_delay_ms=0,
                  should_retry=lambda error, attempt: seen.append((error, attempt)) or False)
    assert result.attempts == 1 and seen == [("not claimed within 50 ms", 1)]


def test_a_claimed_command_that_times_out_is_never_queued_again(settings, relay):
    settings.RELAYHUB = {**settings.RELAYHUB, "TIMEOUT_GRACE_S": 0}
    silent_relay = threading.Thread(target=lambda: _claim_and_vanish(relay), daemon=True)
    silent_relay.start()
    result = exec("machine-1", "sleep 60", timeout_ms=300, retries=3, retry_delay_ms=0)
    assert result.timed_out and result.attempts == 1
    assert Command.objects.count() == 1


def _claim_and_vanish(relay) -> None:
    from django.db import connection

    try:
        for _ in range(100):
            if Command.claim_next(relay, 1):
                return
            threading.Event().wait(0.02)
    finally:
        connection.close()


def test_exec_async_returns_the_id_at_once(db):
    command_id = exec_async("machine-1", "df -h", target_type="ssh", target_host="10.0.0.5", target_port=22,
                            target_username="ops", timeout_ms=1234, priority=8)
    command = Command.objects.get(pk=command_id)
    assert (command.status, command.target_host, command.timeout_ms, command.priority) == ("pending", "10.0.0.5",
                                                                                         1234, 8)


@pytest.mark.parametrize("kwargs", [{"priority": 11}, {"timeout_ms": 0}, {"target_type": "telnet"},
                                    {"target_port": 70000}])
def test_exec_async_validates(db, kwargs):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        exec_async("machine-1", "true", **kwargs)
    assert not Command.objects.exists()
