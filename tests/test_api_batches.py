"""Batches: one command on many machines with max_concurrency and max_errors (SPEC §4)."""

import pytest

from assignments.models import RelayAssignment
from commands import batches
from commands.models import Command
from tests.conftest import mark_online

pytestmark = pytest.mark.django_db(transaction=True)
MACHINES = [f"host-{n:02d}" for n in range(20)]


@pytest.fixture
def relays():
    issued = {machine: RelayAssignment.issue(machine_id=machine, name=machine).relay for machine in MACHINES}
    mark_online(*issued.values())
    return issued


def run(relays, command, exit_code):
    relay = relays[command.machine_id]
    assert command.claim(relay)
    command.finish(relay, command.attempt, status="completed" if exit_code == 0 else "failed", exit_code=exit_code,
                   output=f"out of {command.machine_id}\n")


def in_flight():
    return list(Command.objects.filter(status="pending").order_by("pk"))


def test_batch_of_twenty_stops_past_max_errors(admin_api, relays):
    response = admin_api.post("/api/v1/batches/", {"machine_ids": MACHINES, "command": "deploy", "max_concurrency": 5,
                                                   "max_errors": 2, "timeout_ms": 5000}, format="json")
    assert response.status_code == 201
    batch_id = response.json()["id"]
    assert [c.machine_id for c in in_flight()] == MACHINES[:5]

    run(relays, in_flight()[0], 0)                 # host-00 ok; host-05 dispatched
    assert len(in_flight()) == 5
    for _ in range(2):
        run(relays, in_flight()[0], 1)             # two errors: still within max_errors
    assert len(in_flight()) == 5
    run(relays, in_flight()[0], 1)                 # the third error is past max_errors=2

    batch = admin_api.get(f"/api/v1/batches/{batch_id}/").json()
    assert batch["stopped"] is True
    targets = {t["machine_id"]: t for t in batch["targets"]}
    assert targets["host-00"]["status"] == "completed" and targets["host-00"]["output"] == "out of host-00\n"
    assert [targets[m]["status"] for m in MACHINES[1:4]] == ["failed"] * 3
    assert targets["host-01"]["exit_code"] == 1
    # The four that had been queued but not claimed, and the twelve never sent, are cancelled.
    assert sum(t["status"] == "cancelled" for t in targets.values()) == 16
    assert Command.objects.count() == 8 and not in_flight()
    assert batch["status"] == "stopped"


def test_batch_respects_max_concurrency_and_completes(admin_api, relays):
    machines = MACHINES[:4]
    batch_id = admin_api.post("/api/v1/batches/", {"machine_ids": machines, "command": "uptime",
                                                   "max_concurrency": 2}, format="json").json()["id"]
    seen = []
    while in_flight():
        assert len(in_flight()) <= 2
        command = in_flight()[0]
        seen.append(command.machine_id)
        run(relays, command, 0)
    assert seen == machines
    body = admin_api.get(f"/api/v1/batches/{batch_id}/").json()
    assert body["status"] == "completed" and {t["status"] for t in body["targets"]} == {"completed"}


def test_batch_needs_run_permission_on_every_machine(make_operator, relays):
    from tests.conftest import api_client_for

    operator = api_client_for(make_operator(run=[relays["host-00"]]))
    response = operator.post("/api/v1/batches/", {"machine_ids": ["host-00", "host-01"], "command": "x"},
                             format="json")
    assert response.status_code == 403
    assert not Command.objects.exists()
    assert operator.post("/api/v1/batches/", {"machine_ids": ["host-00"], "command": "x"},
                         format="json").status_code == 201


def test_results_over_the_wire_move_the_batch_on(admin_api, relays):
    from tests.conftest import client_for

    machines = MACHINES[:3]
    keys = {m: RelayAssignment.issue(machine_id=m, name=f"{m}-wire") for m in machines}
    batch_id = admin_api.post("/api/v1/batches/", {"machine_ids": machines, "command": "uptime",
                                                   "max_concurrency": 1}, format="json").json()["id"]
    for machine in machines:
        [queued] = in_flight()
        assert queued.machine_id == machine
        client = client_for(keys[machine])
        [claimed] = client.post("/relay/commands/next", {"waitMs": 0}, format="json").json()["commands"]
        item = {"commandId": claimed["_id"], "attempt": claimed["attempt"], "success": True, "exitCode": 0}
        answer = client.post("/relay/commands/results", {"results": [item]}, format="json").json()
        assert answer["results"][0]["status"] == 200
    assert admin_api.get(f"/api/v1/batches/{batch_id}/").json()["status"] == "completed"


def test_an_operator_lists_only_batches_all_of_whose_machines_they_see(make_operator, relays):
    from tests.conftest import api_client_for

    mine = batches.create(machine_ids=["host-00", "host-01"], command="id")
    repeated = batches.create(machine_ids=["host-01", "host-01"], command="id")
    mixed = batches.create(machine_ids=["host-00", "host-02"], command="id")
    operator = api_client_for(make_operator(view=[relays["host-00"], relays["host-01"]]))

    listed = operator.get("/api/v1/batches/").json()
    ids = {batch["id"] for batch in (listed["results"] if isinstance(listed, dict) else listed)}
    assert ids == {mine.pk, repeated.pk}
    assert operator.get(f"/api/v1/batches/{mixed.pk}/").status_code == 404


def test_a_batch_whose_only_misses_were_never_delivered_is_incomplete_not_failed(admin_api, relays):
    RelayAssignment.issue(machine_id="asleep", name="asleep")  # enabled, never heard from
    created = admin_api.post("/api/v1/batches/", {"machine_ids": ["host-00", "asleep"], "command": "id",
                                                  "max_errors": 0}, format="json").json()
    run(relays, Command.objects.get(machine_id="host-00"), 0)
    batch = admin_api.get(f"/api/v1/batches/{created['id']}/").json()
    assert batch["status"] == "incomplete" and batch["stopped"] is False
    assert batch["counts"] == {"completed": 1, "undelivered": 1, "failed_runs": 0, "not_delivered": 1, "total": 2}


def test_cancelling_a_batch_stops_it_and_cancels_every_copy_not_ended(relays):
    from fleet import exec_cli

    batch = batches.create(machine_ids=MACHINES[:4], command="deploy", max_concurrency=2)
    first, second = in_flight()
    run(relays, first, 0)                          # host-00 done; host-02 dispatched
    assert second.claim(relays[second.machine_id])  # host-01 running

    cancelled = batches.cancel(batch.pk)

    assert sorted(c.machine_id for c in cancelled) == ["host-01", "host-02"]
    batch.refresh_from_db()
    assert batch.stopped and not in_flight()
    assert Command.objects.get(machine_id="host-01").cancel_requested  # its relay is asked to kill it
    items = batches.targets(batch)
    assert [item.status for item in items] == ["completed", "claimed", "cancelled", "cancelled"]  # host-03 never sent
    assert exec_cli.exit_code(items) == exec_cli.EXIT_FAILED
    assert exec_cli.summary(items)[0] == "4 targets: 1 completed, 2 cancelled, 1 unfinished"


def test_an_operator_stops_a_batch_over_the_api_with_run_permission_on_every_machine(make_operator, relays):
    from guardian.shortcuts import assign_perm

    from tests.conftest import api_client_for

    owner = make_operator("owner", run=[relays["host-00"], relays["host-01"]])
    made = api_client_for(owner).post("/api/v1/batches/", {"machine_ids": ["host-00", "host-01"], "command": "x",
                                                           "max_concurrency": 1}, format="json").json()
    half = make_operator("half", run=[relays["host-00"]])
    assign_perm("assignments.view_relay", half, relays["host-01"])
    refused = api_client_for(half).post(f"/api/v1/batches/{made['id']}/cancel/")
    assert refused.status_code in (403, 404)
    assert Command.objects.get().status == "pending", "a refusal cancels nothing"

    stopped = api_client_for(owner).post(f"/api/v1/batches/{made['id']}/cancel/")
    assert stopped.status_code == 200 and stopped.json()["stopped"] is True
    assert Command.objects.get().status == "cancelled"
    run_next = Command.objects.count()
    assert run_next == 1, "nothing more is dispatched once stopped"
