from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from assignments.models import IssuedKey, RelayAssignment
from commands.models import Command


@pytest.fixture
def issue_relay(db) -> Callable[..., IssuedKey]:
    def issue(machine_id: str = "machine-1", name: str = "relay-1") -> IssuedKey:
        return RelayAssignment.issue(machine_id=machine_id, name=name)

    return issue


@pytest.fixture
def issued(issue_relay) -> IssuedKey:
    return issue_relay()


@pytest.fixture
def relay(issued) -> RelayAssignment:
    return issued.relay


def client_for(issued: IssuedKey) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=issued.api_key)
    return client


@pytest.fixture
def relay_client(issued) -> APIClient:
    return client_for(issued)


@pytest.fixture
def make_command(db) -> Callable[..., Command]:
    def make(machine_id: str = "machine-1", command: str = "echo hi", **fields) -> Command:
        fields.setdefault("timeout_ms", 30_000)
        return Command.objects.create(machine_id=machine_id, command=command, **fields)

    return make
