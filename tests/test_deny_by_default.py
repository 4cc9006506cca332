"""Every route needs authentication, and each kind of key only opens its own routes (SPEC §7)."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.conftest import api_client_for, client_for


def walk(patterns, prefix: str = "") -> list[str]:
    paths = []
    for pattern in patterns:
        regex = prefix + str(pattern.pattern.regex.pattern if hasattr(pattern.pattern, "regex") else pattern.pattern)
        if isinstance(pattern, URLResolver):
            paths += walk(pattern.url_patterns, regex)
        elif isinstance(pattern, URLPattern):
            paths.append(regex)
    return paths


def sample_path(regex: str) -> str | None:
    if "format" in regex:
        return None  # DRF's .json suffix variants of the same views
    path = regex.replace("^", "").replace("$", "").replace("\\Z", "").replace("/?", "/")
    path = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", path)
    path = path.replace("\\", "")
    return "/" + path if not path.startswith("/") else path


ROUTES = sorted({p for p in map(sample_path, walk(get_resolver().url_patterns)) if p})
RELAY_ROUTES = [p for p in ROUTES if p.startswith("/relay/")]
OPERATOR_ROUTES = [p for p in ROUTES if p.startswith("/api/")]


def test_the_walk_finds_the_routes():
    assert "/relay/commands/next/" in RELAY_ROUTES and len(RELAY_ROUTES) >= 16
    assert "/api/v1/commands/" in OPERATOR_ROUTES and "/api/v1/rpc/exec" in OPERATOR_ROUTES
    # /metrics takes a bearer token of its own, or answers 404 (tests/test_metrics.py).
    assert all(p in ("/", "/metrics") or p.startswith(("/relay/", "/api/", "/admin/", "/(relay|api)/"))
               for p in ROUTES), ROUTES


ADMIN_ROUTES = [p for p in ROUTES if p.startswith("/admin/") and not re.search(r"login|logout|jsi18n", p)]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ADMIN_ROUTES)
def test_admin_pages_send_anonymous_users_to_login(path):
    response = APIClient().get(path)
    assert response.status_code in (302, 404), (path, response.status_code)
    if response.status_code == 302:
        assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", RELAY_ROUTES + OPERATOR_ROUTES)
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_anonymous_requests_are_refused(path, method):
    if path == "/relay/verify/" and method == "post":
        pytest.skip("verify takes the key in its body: it answers 400/401 by design")
    if path == "/relay/hello/" and method == "get":
        pytest.skip("hello names the service to agents before they send a key (tests/test_relay_hello.py)")
    response = getattr(APIClient(), method)(path, {}, format="json")
    assert response.status_code in (401, 403, 404, 405), (path, response.status_code)
    assert response.status_code != 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", OPERATOR_ROUTES)
def test_a_relay_key_on_operator_routes_is_403(issued, path):
    for method in ("get", "post"):
        response = getattr(client_for(issued), method)(path, {}, format="json")
        assert response.status_code in (403, 405), (path, method, response.status_code)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", [p for p in RELAY_ROUTES if p not in ("/relay/verify/", "/relay/hello/")])
def test_an_operator_key_on_relay_routes_is_401(admin_user_api, path):
    response = api_client_for(admin_user_api).post(path, {}, format="json")
    assert response.status_code == 401, (path, response.status_code)


@pytest.mark.django_db(transaction=True)
def test_a_recreated_relay_sees_nothing_of_the_old_one(issue_relay):
    from commands.models import Command
    from configpush.models import ConfigPush

    old = issue_relay(machine_id="m", name="edge")
    command = Command.objects.create(machine_id="m", command="secret-job")
    command.claim(old.relay)
    ConfigPush.objects.create(relay=old.relay, push_type="allowed_commands", payload={"commands": ["x"]})
    old.relay.delete()
    new = client_for(issue_relay(machine_id="m", name="edge"))
    body = {"commandId": str(command.pk), "success": True, "attempt": 1}
    assert new.post("/relay/commands/result", body, format="json").status_code == 404
    assert new.post("/relay/commands/started", body, format="json").status_code == 404
    assert new.get("/relay/commands").json() == {"commands": []}
    assert new.get("/relay/config-pushes").json() == {"configPushes": []}
    assert client_for(old).post("/relay/heartbeat").status_code in (401, 403)
