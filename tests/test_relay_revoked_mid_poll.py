"""A relay disabled or revoked while it holds a long-poll, or between requests, claims and reports nothing."""

import threading
import time

import pytest

from assignments.models import RelayAssignment
from commands.models import Command, IllegalTransition
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def disable(relay: RelayAssignment) -> None:
    RelayAssignment.objects.filter(pk=relay.pk).update(enabled=False)


def revoke(relay: RelayAssignment) -> None:
    relay.api_key.revoke()


@pytest.mark.parametrize("cut_off", [disable, revoke])
def test_a_long_poll_opened_before_the_cut_off_claims_nothing(issued, make_command, cut_off):
    answer = {}

    def poll():
        answer["response"] = client_for(issued).post("/relay/commands/next", {"max": 1, "waitMs": 1500},
                                                     format="json")

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.4)  # the poll is now waiting
    cut_off(issued.relay)
    command = make_command()  # wakes the waiting poll
    thread.join(10)
    # Only the commands matter: configPending is a hint, and the per-bucket wake-up counters behind it
    # (commands.notify) may set it when another topic shares the config topic's bucket.
    assert answer["response"].status_code == 200
    assert answer["response"].json()["commands"] == []
    command.refresh_from_db()
    assert command.status == "pending" and command.claimed_by_id is None


@pytest.mark.parametrize("cut_off", [disable, revoke])
def test_claims_starts_and_results_of_a_cut_off_relay_are_not_applied(relay, make_command, cut_off):
    """The relay object was loaded (authenticated) before the cut-off; each statement checks again."""
    running, claimed, pending = make_command(), make_command(), make_command()
    assert running.claim(relay) and claimed.claim(relay)
    running.refresh_from_db()
    running.start(relay, running.attempt)
    claimed.refresh_from_db()
    cut_off(relay)

    assert Command.claim_next(relay, 5) == []
    assert not pending.claim(relay)
    assert Command.start_claimed(relay, [(claimed.pk, claimed.attempt)]) == {}
    with pytest.raises(IllegalTransition):
        claimed.start(relay, claimed.attempt)
    result = {"status": "completed", "exit_code": 0, "output": "", "stderr": "", "error": "", "duration_ms": 1,
              "output_truncated": False}
    assert Command.finish_claimed(relay, [(running.pk, running.attempt, result)]) == set()
    with pytest.raises(IllegalTransition):
        running.finish(relay, running.attempt, **result)
    assert [c.status for c in Command.objects.order_by("pk")] == ["executing", "claimed", "pending"]


def test_a_live_relay_still_claims_starts_and_finishes(relay, make_command):
    command = make_command()
    [claimed] = Command.claim_next(relay, 5)
    assert Command.start_claimed(relay, [(claimed.pk, claimed.attempt)]) == {(claimed.pk, claimed.attempt): False}
    result = {"status": "completed", "exit_code": 0, "output": "ok", "stderr": "", "error": "", "duration_ms": 1,
              "output_truncated": False}
    assert Command.finish_claimed(relay, [(claimed.pk, claimed.attempt, result)]) == {(claimed.pk, claimed.attempt)}
    command.refresh_from_db()
    assert command.status == "completed"
