"""The agent's extensions: next (long-poll claim), started, output, results (SPEC §3)."""

import threading
import time

import pytest

from commands import notify, output
from commands.models import Command
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def next_(client, **body):
    return client.post("/relay/commands/next", body, format="json")


def test_next_claims_up_to_max_best_first_with_attempt(relay, relay_client, make_command):
    low = make_command(priority=1)
    high = make_command(priority=9)
    middle = make_command()
    response = next_(relay_client, max=2, waitMs=0)
    assert response.status_code == 200
    commands = response.json()["commands"]
    assert [c["_id"] for c in commands] == [str(high.pk), str(middle.pk)]
    assert all(c["attempt"] == 1 for c in commands)
    assert Command.objects.get(pk=high.pk).claimed_by_id == relay.pk
    assert Command.objects.get(pk=low.pk).status == "pending"


def test_next_returns_empty_after_the_wait(relay_client):
    started = time.monotonic()
    response = next_(relay_client, max=1, waitMs=300)
    assert response.json() == {"commands": []}
    assert 0.25 <= time.monotonic() - started < 3


def test_next_wakes_when_a_command_is_queued(relay_client):
    answer = {}

    def poll():
        started = time.monotonic()
        answer["body"] = next_(relay_client, max=1, waitMs=10_000).json()
        answer["took"] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    queued_at = time.monotonic()
    command = Command.objects.create(machine_id="machine-1", command="true", timeout_ms=1000)
    thread.join(10)
    assert [c["_id"] for c in answer["body"]["commands"]] == [str(command.pk)]
    assert time.monotonic() - queued_at < 1.0


def test_a_command_queued_just_after_the_first_look_is_not_missed(settings, issue_relay, monkeypatch):
    from commands import longpoll

    # No database re-poll while waiting: only the wake-up can deliver the command in time.
    settings.RELAYHUB = {**settings.RELAYHUB, "LONGPOLL_DB_POLL_MS": 60_000, "LONGPOLL_SAFETY_POLL_MS": 60_000}
    queued = []
    first_look = longpoll._first_look

    def first_look_then_queue(*args):
        found = first_look(*args)
        # Committed and published after the look, before the long-poll subscribes.
        queued.append(Command.objects.create(machine_id="machine-race", command="true"))
        return found

    monkeypatch.setattr(longpoll, "_first_look", first_look_then_queue)
    started = time.monotonic()
    body = next_(client_for(issue_relay(machine_id="machine-race")), max=1, waitMs=5_000).json()
    assert [c["_id"] for c in body["commands"]] == [str(queued[0].pk)]
    assert time.monotonic() - started < 2


def test_a_quiet_long_poll_looks_only_once_more_after_subscribing(settings, issue_relay, monkeypatch):
    settings.RELAYHUB = {**settings.RELAYHUB, "LONGPOLL_DB_POLL_MS": 60_000}
    looks = []
    claim_next = Command.claim_next
    monkeypatch.setattr(Command, "claim_next", classmethod(lambda cls, *a: looks.append(1) or claim_next(*a)))
    monkeypatch.setattr(notify.notifier, "broadcast", None)  # no broker: a last look at the deadline
    assert next_(client_for(issue_relay(machine_id="machine-quiet")), max=1, waitMs=300).json() == {"commands": []}
    # The first look and the last; none right after subscribing, as nothing was published meanwhile.
    assert len(looks) == 2


def test_next_caps_the_hold(settings, relay_client):
    settings.RELAYHUB = {**settings.RELAYHUB, "LONGPOLL_MAX_MS": 200}
    started = time.monotonic()
    assert next_(relay_client, waitMs=60_000).json() == {"commands": []}
    assert time.monotonic() - started < 3


def test_next_ignores_other_machines(relay_client, make_command):
    make_command(machine_id="elsewhere")
    assert next_(relay_client, waitMs=0).json() == {"commands": []}


@pytest.mark.parametrize("body,status", [
    ({"max": 0}, 400), ({"max": 51}, 400), ({"max": "2"}, 400), ({"waitMs": -1}, 400), ({"waitMs": 1.5}, 400),
])
def test_next_validates_its_body(relay_client, body, status):
    response = next_(relay_client, **body)
    assert response.status_code == status
    assert response.json()["success"] is False


def test_next_needs_a_key(db):
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.post("/relay/commands/next", {}, format="json").status_code == 401
    client.credentials(HTTP_X_API_KEY="rly_bad")
    assert client.post("/relay/commands/next", {}, format="json").status_code == 401
    assert client.options("/relay/commands/next").status_code == 200
    assert client.get("/relay/commands/next").status_code in (401, 405)


def test_next_junk_body_is_400(relay_client):
    response = relay_client.generic("POST", "/relay/commands/next", b"{junk", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["success"] is False


@pytest.fixture
def running(relay, relay_client, make_command):
    command = make_command()
    [claimed] = next_(relay_client, waitMs=0).json()["commands"]
    assert claimed["_id"] == str(command.pk)
    return command


def test_started_moves_to_executing(relay_client, running):
    response = relay_client.post("/relay/commands/started", {"commandId": str(running.pk), "attempt": 1},
                                 format="json")
    assert response.json() == {"success": True, "cancelRequested": False}
    running.refresh_from_db()
    assert running.status == "executing" and running.started_at


def test_started_with_a_stale_attempt_is_409(relay_client, running):
    response = relay_client.post("/relay/commands/started", {"commandId": str(running.pk), "attempt": 2},
                                 format="json")
    assert response.status_code == 409


def test_started_by_another_relay_is_404(issue_relay, running):
    rival = client_for(issue_relay(name="rival"))
    response = rival.post("/relay/commands/started", {"commandId": str(running.pk), "attempt": 1}, format="json")
    assert response.status_code == 404


def test_started_for_several_commands_answers_each(relay, relay_client, make_command):
    first, second, cancelled = make_command(), make_command(), make_command()
    claimed = next_(relay_client, max=3, waitMs=0).json()["commands"]
    assert len(claimed) == 3
    Command.objects.get(pk=cancelled.pk).cancel()
    items = [{"commandId": c["_id"], "attempt": c["attempt"]} for c in claimed]
    items += [{"commandId": str(first.pk), "attempt": 9}, {"commandId": "999999", "attempt": 1}]

    response = relay_client.post("/relay/commands/started", {"commands": items}, format="json")

    assert response.status_code == 200
    answers = response.json()["commands"]
    assert [(a["commandId"], a["status"]) for a in answers] == [
        (str(first.pk), 200), (str(second.pk), 200), (str(cancelled.pk), 200), (str(first.pk), 409), ("999999", 404)]
    assert [a.get("cancelRequested") for a in answers[:3]] == [False, False, True]
    assert "stale attempt" in answers[3]["error"]
    assert Command.objects.filter(pk__in=[first.pk, second.pk], status="executing").count() == 2


@pytest.mark.parametrize("body", [{"commands": []}, {"commands": [{"commandId": 1, "attempt": 1}]},
                                  {"commands": "x"}, {"commands": [{"commandId": "1", "attempt": 1}] * 51}])
def test_started_for_several_is_validated(relay_client, body):
    response = relay_client.post("/relay/commands/started", body, format="json")
    assert response.status_code == 400 and "commands" in response.json()["error"]


def chunks(command, *items, attempt=1):
    return {"commandId": str(command.pk), "attempt": attempt,
            "chunks": [{"stream": s, "offset": o, "data": d} for s, o, d in items]}


def test_output_chunks_are_idempotent_and_readable_in_order(relay_client, running):
    relay_client.post("/relay/commands/output", chunks(running, ("stdout", 0, "hel"), ("stderr", 0, "oops")),
                      format="json")
    relay_client.post("/relay/commands/output", chunks(running, ("stdout", 0, "hel"), ("stdout", 3, "lo\n")),
                      format="json")
    assert output.read(running, "stdout") == ("hello\n", 6)
    assert output.read(running, "stdout", 3) == ("lo\n", 6)
    assert output.read(running, "stderr") == ("oops", 4)
    assert running.chunks.count() == 3


def test_output_response_signals_a_cancel(relay_client, running):
    running.cancel()
    response = relay_client.post("/relay/commands/output", chunks(running, ("stdout", 0, "x")), format="json")
    assert response.json() == {"success": True, "cancelRequested": True}


def test_output_is_capped(settings, relay_client, running):
    # Live chunks are the head of the final copy: a quarter of the 20-byte cap.
    settings.RELAYHUB = {**settings.RELAYHUB, "OUTPUT_CAP_BYTES": 20}
    relay_client.post("/relay/commands/output", chunks(running, ("stdout", 0, "abc"), ("stdout", 3, "defgh")),
                      format="json")
    assert output.read(running, "stdout") == ("abcde", 5)
    assert Command.objects.get(pk=running.pk).output_truncated


def test_output_with_a_stale_attempt_is_409(relay_client, running):
    response = relay_client.post("/relay/commands/output", chunks(running, ("stdout", 0, "x"), attempt=3),
                                 format="json")
    assert response.status_code == 409
    assert not running.chunks.exists()


def test_batch_results_answer_each_item(relay, relay_client, make_command):
    first, second = make_command(), make_command()
    next_(relay_client, max=2, waitMs=0)
    foreign = make_command(machine_id="elsewhere")
    body = {"results": [
        {"commandId": str(first.pk), "success": True, "output": "a", "exitCode": 0, "attempt": 1},
        {"commandId": str(second.pk), "success": False, "exitCode": 3, "attempt": 1},
        {"commandId": str(first.pk), "success": False, "attempt": 1},
        {"commandId": str(foreign.pk), "success": True},
        {"commandId": str(second.pk), "success": "no"},
    ]}
    response = relay_client.post("/relay/commands/results", body, format="json")
    assert response.status_code == 200
    statuses = [(r["commandId"], r["status"]) for r in response.json()["results"]]
    assert statuses == [(str(first.pk), 200), (str(second.pk), 200), (str(first.pk), 409),
                        (str(foreign.pk), 404), (str(second.pk), 400)]
    assert Command.objects.get(pk=first.pk).status == "completed"
    assert Command.objects.get(pk=second.pk).status == "failed"
    assert Command.objects.get(pk=foreign.pk).status == "pending"


def test_output_cap_counts_bytes_not_characters(settings, relay_client, running):
    settings.RELAYHUB = {**settings.RELAYHUB, "OUTPUT_CAP_BYTES": 16, "OUTPUT_HEAD_FRACTION": 0.5}
    relay_client.post("/relay/commands/output", chunks(running, ("stdout", 0, "😀😀"), ("stdout", 2, "😀😀")),
                      format="json")
    relay_client.post("/relay/commands/output", chunks(running, ("stdout", 0, "😀😀")), format="json")
    assert output.read(running, "stdout") == ("😀😀", 2)
    assert Command.objects.get(pk=running.pk).output_truncated


def test_output_for_a_command_that_ended_is_409(relay_client, running):
    running.expire({"claimed"}, "relay lost")
    response = relay_client.post("/relay/commands/output", chunks(running, ("stdout", 0, "late")), format="json")
    assert response.status_code == 409 and "timeout" in response.json()["error"]
    assert not running.chunks.exists()


def test_a_post_to_an_unknown_relay_route_is_a_json_404(db):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/relay/no-such-route", "{}", content_type="application/json")
    assert response.status_code == 404 and response.json() == {"error": "not found", "success": False}


def test_a_claim_whose_answer_was_lost_is_handed_out_again_until_started(relay, relay_client, make_command):
    command = make_command(timeout_ms=5000)
    [lost] = Command.claim_next(relay, 1)  # claimed, but the answer never reached the relay
    assert lost.pk == command.pk
    again = next_(relay_client, max=2, waitMs=0).json()["commands"]
    assert [(c["_id"], c["attempt"]) for c in again] == [(str(command.pk), 1)]
    relay_client.post("/relay/commands/started", {"commandId": str(command.pk), "attempt": 1}, format="json")
    assert next_(relay_client, max=2, waitMs=0).json() == {"commands": []}


def test_a_claim_the_relay_says_it_holds_is_not_handed_out_again(relay, relay_client, make_command):
    held, fresh = make_command(priority=9), make_command()
    [claimed] = next_(relay_client, max=1, waitMs=0).json()["commands"]
    assert claimed["_id"] == str(held.pk)

    again = next_(relay_client, max=2, waitMs=0, holding=[str(held.pk), "not-an-id"]).json()["commands"]

    assert [c["_id"] for c in again] == [str(fresh.pk)]
    assert Command.objects.get(pk=held.pk).status == "claimed"


@pytest.mark.parametrize("holding", ["1", [1], ["1" * 19], ["1"] * 1001])
def test_holding_must_be_a_short_list_of_id_strings(relay_client, holding):
    response = next_(relay_client, waitMs=0, holding=holding)
    assert response.status_code == 400 and "holding" in response.json()["error"]


def test_another_relays_unstarted_claim_is_not_handed_out(relay, issue_relay, make_command):
    make_command()
    Command.claim_next(relay, 1)
    rival = client_for(issue_relay(name="rival"))
    assert next_(rival, waitMs=0).json() == {"commands": []}


def statements(captured) -> list[str]:
    """The SQL a request ran, without transaction control (SQLite logs its BEGIN IMMEDIATE, Postgres does not)
    and without wake-ups (pg_notify when Postgres is the broker, as without REDIS_URL)."""
    return [q["sql"].split()[0] for q in captured.captured_queries
            if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "SELECT pg_notify"))]


def test_the_hot_routes_take_two_queries_each(relay, relay_client, make_command):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    relay_client.post("/relay/heartbeat")  # the first sign of life is written; later ones at most every few seconds
    next_(relay_client, waitMs=0)  # so is the first fetch (RELAYHUB_FETCH_WRITE_S)
    make_command()
    with CaptureQueriesContext(connection) as claim:
        [claimed] = next_(relay_client, waitMs=0).json()["commands"]
    # The key, re-delivering held claims (none), the claiming UPDATE ... RETURNING.
    assert statements(claim) == ["SELECT", "UPDATE", "UPDATE"]
    item = {"commandId": claimed["_id"], "attempt": claimed["attempt"]}
    with CaptureQueriesContext(connection) as started:
        assert relay_client.post("/relay/commands/started", item, format="json").status_code == 200
    assert statements(started) == ["SELECT", "UPDATE"]  # the key, UPDATE ... RETURNING
    with CaptureQueriesContext(connection) as result:
        answer = relay_client.post("/relay/commands/results", {"results": [{**item, "success": True}]}, format="json")
    assert answer.json()["results"][0]["status"] == 200
    assert statements(result) == ["SELECT", "WITH"]  # the key, WITH v AS (VALUES ...) UPDATE ... RETURNING
    with CaptureQueriesContext(connection) as beat:
        assert relay_client.post("/relay/heartbeat").status_code == 200
    assert statements(beat) == ["SELECT", "SELECT"]  # the key, commands to cancel


def test_started_for_a_batch_is_one_statement(relay, relay_client, make_command):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(5):
        make_command()
    claimed = next_(relay_client, max=5, waitMs=0).json()["commands"]
    items = [{"commandId": c["_id"], "attempt": c["attempt"]} for c in claimed]
    with CaptureQueriesContext(connection) as started:
        answers = relay_client.post("/relay/commands/started", {"commands": items}, format="json").json()["commands"]
    assert [a["status"] for a in answers] == [200] * 5
    assert statements(started) == ["SELECT", "UPDATE"]  # the key, one UPDATE ... RETURNING for all five
    assert Command.objects.filter(status="executing").count() == 5


def test_results_for_a_batch_are_one_statement_each_answered_on_its_own(relay, relay_client, make_command):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(4):
        make_command()
    claimed = next_(relay_client, max=4, waitMs=0).json()["commands"]
    done = [{"commandId": c["_id"], "attempt": c["attempt"], "success": True, "output": f"out {i}", "exitCode": 0,
             "durationMs": i} for i, c in enumerate(claimed[:3])]
    failed = {"commandId": claimed[3]["_id"], "attempt": claimed[3]["attempt"], "success": False, "exitCode": None,
              "error": "boom", "status": "timeout"}
    with CaptureQueriesContext(connection) as applied:
        answers = relay_client.post("/relay/commands/results", {"results": [*done, failed]},
                                    format="json").json()["results"]
    assert [a["status"] for a in answers] == [200] * 4
    # The key, one statement for all four, and (one of them timed out) whether a notification rule listens.
    assert statements(applied) == ["SELECT", "WITH", "SELECT"]
    rows = {c.pk: c for c in Command.objects.filter(pk__in=[int(c["_id"]) for c in claimed])}
    assert [(rows[int(d["commandId"])].status, rows[int(d["commandId"])].output, rows[int(d["commandId"])].duration_ms)
            for d in done] == [("completed", "out 0", 0), ("completed", "out 1", 1), ("completed", "out 2", 2)]
    timed_out = rows[int(failed["commandId"])]
    assert (timed_out.status, timed_out.exit_code, timed_out.error) == ("timeout", None, "boom")

    # Sent again with one changed and one twice: identical copies are 200, a different result 409.
    again = [done[0], {**done[1], "output": "changed"}, done[2], done[2]]
    answers = relay_client.post("/relay/commands/results", {"results": again}, format="json").json()["results"]
    assert [a["status"] for a in answers] == [200, 409, 200, 200]
    assert Command.objects.get(pk=int(done[1]["commandId"])).output == "out 1"


def test_the_same_command_twice_in_one_batch_applies_the_first(relay, relay_client, make_command):
    make_command()
    [claimed] = next_(relay_client, waitMs=0).json()["commands"]
    first = {"commandId": claimed["_id"], "attempt": claimed["attempt"], "success": True, "output": "a"}
    answers = relay_client.post("/relay/commands/results", {"results": [first, {**first, "output": "b"}]},
                                format="json").json()["results"]
    assert [a["status"] for a in answers] == [200, 409]
    assert Command.objects.get(pk=int(claimed["_id"])).output == "a"
