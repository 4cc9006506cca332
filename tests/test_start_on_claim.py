"""A `next` with a `session` starts what it claims: no `started` request, and a lost answer reaches only that run."""

import pytest

from commands.models import Command

pytestmark = pytest.mark.django_db(transaction=True)


def next_(client, **body):
    return client.post("/relay/commands/next", {"waitMs": 0, **body}, format="json")


def test_a_session_claim_starts_the_command_and_says_so(relay, relay_client, make_command):
    command = make_command()

    [wire] = next_(relay_client, max=1, session="run-a").json()["commands"]

    assert (wire["_id"], wire["attempt"], wire["started"]) == (str(command.pk), 1, True)
    command.refresh_from_db()
    assert (command.status, command.claimed_by_id, command.claim_session) == ("executing", relay.pk, "run-a")
    assert command.started_at is not None and command.started_at == command.claimed_at


def test_without_a_session_a_claim_is_only_a_claim(relay_client, make_command):
    command = make_command()

    [wire] = next_(relay_client, max=1).json()["commands"]

    assert "started" not in wire
    command.refresh_from_db()
    assert (command.status, command.started_at, command.claim_session) == ("claimed", None, "")


def test_a_lost_answer_goes_again_to_the_same_session_only_while_it_does_not_hold_it(relay_client, make_command):
    lost, held = make_command(priority=9), make_command()
    next_(relay_client, max=2, session="run-a")  # the answer never arrived: the agent holds neither

    assert next_(relay_client, max=5, session="run-b").json() == {"commands": []}, "another run never gets them"
    assert next_(relay_client, max=5).json() == {"commands": []}, "nor a poll without a session"
    again = next_(relay_client, max=5, session="run-a", holding=[str(held.pk)]).json()["commands"]

    assert [(c["_id"], c["attempt"], c["started"]) for c in again] == [(str(lost.pk), 1, True)]


def test_a_result_ends_a_session_claim_like_any_started_command(relay_client, make_command):
    command = make_command()
    [wire] = next_(relay_client, max=1, session="run-a").json()["commands"]

    response = relay_client.post("/relay/commands/results", {"results": [
        {"commandId": wire["_id"], "attempt": wire["attempt"], "success": True, "output": "ok", "exitCode": 0}]},
        format="json")

    assert response.status_code == 200 and response.json()["results"][0]["status"] == 200
    command.refresh_from_db()
    assert (command.status, command.output) == ("completed", "ok")
    assert next_(relay_client, max=1, session="run-a").json() == {"commands": []}


def test_an_unstarted_claim_is_still_announced_by_a_session_poll(relay, relay_client, make_command):
    command = make_command()
    Command.claim_next(relay, 1)  # claimed without a session (an older agent), its answer lost

    [wire] = next_(relay_client, max=1, session="run-a").json()["commands"]

    assert wire["_id"] == str(command.pk) and "started" not in wire
    assert Command.objects.get(pk=command.pk).status == "claimed"


@pytest.mark.parametrize("session", [1, "x" * 65, None])
def test_a_session_must_be_a_short_string(relay_client, session):
    response = next_(relay_client, session=session)
    assert response.status_code == 400 and "session" in response.json()["error"]
