from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from assignments.models import IssuedKey, RelayAssignment
from commands.models import Command


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Give each test process its own database, so concurrent runs never share one."""
    from django.db import connections

    for connection in connections.all():
        test = connection.settings_dict.setdefault("TEST", {})
        base = test.get("NAME") or f"test_{connection.settings_dict['NAME']}"
        stem, dot, suffix = str(base).rpartition(".") if str(base).endswith(".sqlite3") else (base, "", "")
        test["NAME"] = f"{stem}_{os.getpid()}{dot}{suffix}"


CACHE_KEY_PREFIX = f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session", autouse=True)
def _own_cache_keys() -> None:
    """Rate counters of this test process only: with REDIS_URL, every process and run shares one Redis."""
    from django.conf import settings
    from django.core.cache import caches

    settings.CACHES["default"]["KEY_PREFIX"] = CACHE_KEY_PREFIX  # read by every cache made from now on
    caches["default"].key_prefix = CACHE_KEY_PREFIX


def clear_cache() -> None:
    """Forget this process's cache keys; ``cache.clear()`` would flush the shared Redis database."""
    from django.conf import settings
    from django.core.cache import cache

    if not settings.REDIS_URL:
        cache.clear()
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{CACHE_KEY_PREFIX}:*"):
        client.delete(key)


@pytest.fixture(autouse=True)
def _forget_failed_authentication() -> None:
    """Each test starts with no failed attempts counted against the test client's address."""
    from relayhub.web import failed_auth

    failed_auth.forget("127.0.0.1")


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup, django_db_blocker):
    """Pooled connections outlive tests; close them before the test database is dropped."""
    yield
    from django.db import connections

    from commands import notify

    if notify.notifier.fanout is not None:
        notify.notifier.fanout.stop()
    with django_db_blocker.unblock():
        for connection in connections.all(initialized_only=True):
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()


@pytest.fixture
def issue_relay(db) -> Callable[..., IssuedKey]:
    def issue(machine_id: str = "machine-1", name: str = "relay-1") -> IssuedKey:
        return RelayAssignment.issue(machine_id=machine_id, name=name)

    return issue


def mark_online(*relays: RelayAssignment) -> None:
    """As if each relay had just been heard from."""
    from django.utils import timezone

    from assignments.models import RelayStatus

    RelayStatus.objects.filter(relay__in=relays).update(last_heartbeat_at=timezone.now())


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


def api_client_for(user) -> APIClient:
    from relayhub.web import operator_tokens

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {operator_tokens.issue(user)}")
    return client


@pytest.fixture
def admin_user_api(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("root", "root@example.com", "pw-root-123456")


@pytest.fixture
def admin_api(admin_user_api) -> APIClient:
    return api_client_for(admin_user_api)


@pytest.fixture
def make_operator(db):
    """A staff user holding only the given object permissions on relays."""
    from django.contrib.auth.models import User
    from guardian.shortcuts import assign_perm

    def make(username: str = "op", view=(), run=(), configure=(), approve=()):
        user = User.objects.create_user(username, password="pw-op-123456", is_staff=True)
        for relay in approve:
            assign_perm("assignments.view_relay", user, relay)
            assign_perm("assignments.approve_command", user, relay)
        for relay in configure:
            assign_perm("assignments.view_relay", user, relay)
            assign_perm("assignments.configure_relay", user, relay)
        for relay in view:
            assign_perm("assignments.view_relay", user, relay)
        for relay in run:
            assign_perm("assignments.view_relay", user, relay)
            assign_perm("assignments.run_command", user, relay)
        return user

    return make


@pytest.fixture
def admin_client_(admin_user_api):
    """A Django test client signed in as a superuser."""
    from django.test import Client

    client = Client()
    client.force_login(admin_user_api)
    return client
