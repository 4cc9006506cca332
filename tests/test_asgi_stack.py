"""The ASGI stack: relay routes through a lean handler, the site through Django's full one."""

import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.utils.module_loading import import_string


def test_every_middleware_is_async_capable():
    for path in [*settings.MIDDLEWARE, *settings.RELAY_MIDDLEWARE]:
        middleware = import_string(path)
        # Django takes a middleware without the attribute as sync-only.
        assert getattr(middleware, "async_capable", False), f"{path} would put every request on a thread"


@async_to_sync
async def asgi_request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""):
    from relayhub.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "127.0.0.1", **(headers or {})}.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(10)
    content = await communicator.receive_output(10)
    await communicator.wait(5)
    response_headers = {}
    for name, value in start["headers"]:
        response_headers.setdefault(name.decode().lower(), []).append(value.decode())
    return start["status"], response_headers, content["body"]


@pytest.mark.django_db(transaction=True)
def test_a_relay_route_is_served_without_site_middleware_but_with_security_headers(issued):
    status, headers, body = asgi_request("POST", "/relay/heartbeat", {"x-api-key": issued.api_key})
    assert status == 200 and json.loads(body) == {"success": True, "cancelCommandIds": []}
    assert headers["x-content-type-options"] == ["nosniff"]
    assert headers["content-length"] == [str(len(body))]  # not chunked, for the simplest relay clients
    # No session, CSRF or clickjacking middleware touched it.
    assert "set-cookie" not in headers and "x-frame-options" not in headers
    assert "cookie" not in ",".join(headers.get("vary", [])).lower()


@pytest.mark.django_db(transaction=True)
def test_relay_errors_through_the_lean_handler_are_json():
    status, headers, body = asgi_request("POST", "/relay/commands/started", body=b"{}")
    assert status == 401 and json.loads(body)["success"] is False
    assert headers["www-authenticate"] == ["X-API-Key"]
    status, _, body = asgi_request("POST", "/relay/no-such-route", {"x-api-key": "rly_x"})
    assert status == 404 and json.loads(body)["success"] is False


@pytest.mark.django_db(transaction=True)
def test_the_site_still_gets_the_full_middleware_stack():
    status, headers, _ = asgi_request("GET", "/admin/login/")
    assert status == 200
    assert headers["x-frame-options"] == ["DENY"]
    assert any(cookie.startswith("csrftoken=") for cookie in headers["set-cookie"])


@pytest.mark.django_db(transaction=True)
def test_waiting_long_polls_share_a_few_threads(issued):
    import asyncio
    import threading

    from relayhub.asgi import application

    waiting = 30

    async def long_poll() -> ApplicationCommunicator:
        body = json.dumps({"max": 1, "waitMs": 1500}).encode()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/relay/commands/next", "raw_path": b"/relay/commands/next", "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1"), (b"x-api-key", issued.api_key.encode()),
                        (b"content-length", str(len(body)).encode())],
        }
        communicator = ApplicationCommunicator(application, scope)
        await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
        return communicator

    @async_to_sync
    async def scenario() -> tuple[int, list[int]]:
        before = threading.active_count()
        polls = [await long_poll() for _ in range(waiting)]
        await asyncio.sleep(0.8)  # every one has looked once and is waiting now
        added = threading.active_count() - before
        statuses = [(await poll.receive_output(10))["status"] for poll in polls]
        for poll in polls:
            await poll.receive_output(10)
            await poll.wait(5)
        return added, statuses

    added, statuses = scenario()
    assert statuses == [200] * waiting
    assert added <= settings.RELAYHUB["RELAY_THREADS"] + 2, f"{added} threads for {waiting} waiting relays"
