"""Concurrent decisions: the first conditional update of the approval wins; the others get Conflict and change nothing.

Threads with their own database connections, on whichever database the suite runs (SQLite, or PostgreSQL with
DATABASE_URL).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from assignments.models import RelayAssignment
from commands import approvals, batches
from commands.models import Command
from tests.conftest import mark_online

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 5


@pytest.fixture
def deciders(make_operator):
    relay = RelayAssignment.issue(machine_id="db", name="db-1").relay
    RelayAssignment.objects.filter(pk=relay.pk).update(requires_approval=True)
    mark_online(relay)
    return [make_operator(f"approver-{n}", approve=[relay]) for n in range(4)]


def race(*moves) -> list[str]:
    """Run the moves at once; each answers what happened to it."""
    start, outcomes = threading.Barrier(len(moves)), [""] * len(moves)

    def run(index: int, move) -> None:
        try:
            start.wait(5)
            outcomes[index] = move()
        except approvals.Conflict:
            outcomes[index] = "conflict"
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, move)) for n, move in enumerate(moves)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_of_four_concurrent_approvals_and_rejections_exactly_one_acts(deciders):
    for round_ in range(ROUNDS):
        command = Command.objects.create(machine_id="db", command=f"echo {round_}")
        approval = approvals.of(command)
        moves = [lambda user=user: approvals.approve(approval.__class__.objects.get(pk=approval.pk), user).state
                 for user in deciders[:2]]
        moves += [lambda user=user: approvals.reject(approval.__class__.objects.get(pk=approval.pk), user, "no").state
                  for user in deciders[2:]]

        outcomes = Counter(race(*moves))

        assert outcomes["conflict"] == 3, outcomes
        approval.refresh_from_db()
        command.refresh_from_db()
        assert outcomes[approval.state] == 1
        assert command.status == ("pending" if approval.state == "approved" else "cancelled")
        assert approval.decided_by in deciders


def test_an_approval_racing_a_cancel_leaves_a_consistent_pair(deciders):
    for round_ in range(ROUNDS):
        command = Command.objects.create(machine_id="db", command=f"echo {round_}")
        approval = approvals.of(command)

        def cancel() -> str:
            Command.objects.get(pk=command.pk).cancel()
            return "cancelled"

        race(lambda: approvals.approve(approval.__class__.objects.get(pk=approval.pk), deciders[0]).state, cancel)

        approval.refresh_from_db()
        command.refresh_from_db()
        # Either the cancel withdrew it first, or it was approved and then withdrawn from the queue.
        assert command.status == "cancelled"
        assert (approval.state, command.error) in {("withdrawn", "cancelled while awaiting approval"),
                                                   ("approved", "cancelled before a relay claimed it")}


def test_a_batch_approved_twice_at_once_dispatches_once(deciders):
    batch = batches.create(machine_ids=["db"], command="vacuum")
    approval = approvals.of(batch)

    outcomes = Counter(race(*[lambda user=user: approvals.approve(approval.__class__.objects.get(pk=approval.pk),
                                                                  user).state for user in deciders[:2]]))

    assert outcomes == Counter({"approved": 1, "conflict": 1})
    assert batch.commands.count() == 1
