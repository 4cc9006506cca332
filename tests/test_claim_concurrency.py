"""Exactly one of any number of concurrent claimers wins (SPEC §3, §8)."""

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from assignments.models import RelayAssignment
from commands.models import Command

RELAYS = 20
COMMANDS = 200


@pytest.mark.django_db(transaction=True)
def test_twenty_relays_claim_two_hundred_commands_each_exactly_once(live_server):
    issued = [RelayAssignment.issue(machine_id="shared-machine", name=f"relay-{n}") for n in range(RELAYS)]
    ids = [str(Command.objects.create(machine_id="shared-machine", command=f"echo {n}").pk) for n in range(COMMANDS)]

    def claim_all(key: str) -> list[str]:
        won = []
        order = ids[:]
        random.shuffle(order)
        with requests.Session() as session:
            session.headers["X-API-Key"] = key
            for command_id in order:
                response = session.post(f"{live_server.url}/relay/commands/claim", json={"commandId": command_id},
                                        timeout=30)
                assert response.status_code in (200, 400), response.text
                if response.status_code == 200:
                    assert response.json()["command"]["_id"] == command_id
                    won.append(command_id)
        return won

    with ThreadPoolExecutor(RELAYS) as pool:
        winners = list(pool.map(claim_all, [i.api_key for i in issued]))

    wins = Counter(command_id for won in winners for command_id in won)
    assert sorted(wins) == sorted(ids)
    assert set(wins.values()) == {1}
    assert Command.objects.filter(status="claimed", attempt=1).count() == COMMANDS
    claimers = dict(Command.objects.values_list("pk", "claimed_by_id"))
    relay_of_key = {i.api_key: i.relay.pk for i in issued}
    for key, won in zip([i.api_key for i in issued], winners, strict=True):
        assert all(claimers[int(command_id)] == relay_of_key[key] for command_id in won)


@pytest.mark.django_db(transaction=True)
def test_concurrent_long_poll_claims_take_each_command_once_and_never_more_than_max(live_server):
    issued = [RelayAssignment.issue(machine_id="shared-machine", name=f"relay-{n}") for n in range(10)]
    timeouts = [1_000, 60_000]
    ids = {str(Command.objects.create(machine_id="shared-machine", command=f"echo {n}",
                                      timeout_ms=timeouts[n % 2]).pk) for n in range(COMMANDS)}

    def claim_until_none(key: str) -> list[str]:
        won = []
        with requests.Session() as session:
            session.headers["X-API-Key"] = key
            while True:
                response = session.post(f"{live_server.url}/relay/commands/next",
                                        json={"max": 5, "waitMs": 0, "holding": won}, timeout=30)
                assert response.status_code == 200, response.text
                commands = response.json()["commands"]
                assert len(commands) <= 5
                if not commands:
                    return won
                won += [command["_id"] for command in commands]

    with ThreadPoolExecutor(len(issued)) as pool:
        winners = list(pool.map(claim_until_none, [i.api_key for i in issued]))

    wins = Counter(command_id for won in winners for command_id in won)
    assert set(wins) == ids and set(wins.values()) == {1}
    for command in Command.objects.filter(machine_id="shared-machine"):
        # Each claim's deadline comes from its own timeout.
        assert (command.deadline_at - command.claimed_at).total_seconds() * 1000 == command.timeout_ms
