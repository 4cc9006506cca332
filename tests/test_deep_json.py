"""Deeply nested JSON is a 400 with a JSON message on every JSON route, never a 500 (finding 5)."""

import pytest
from rest_framework.test import APIClient

from relayhub.web import json_body

TOO_DEEP_FOR_PYTHON = [b"[" * 2000, b'{"a":' * 2000, b"[" * 5000 + b"]" * 5000]
# Parsed by Python, but deeper than MAX_JSON_DEPTH (64): refused before it can be stored or rendered.
DEEP = b"[" * 200 + b"]" * 200

RELAY_ROUTES = [
    "/relay/verify",  # parses the body before any authentication
    "/relay/status",
    "/relay/commands/claim",
    "/relay/config-pushes/ack",
    "/relay/commands/result",
    "/relay/commands/started",
    "/relay/commands/results",
    "/relay/commands/next",
]
OPERATOR_ROUTES = ["/api/v1/commands/", "/api/v1/rpc/exec", "/api/v1/batches/"]


def assert_json_400(response, relay: bool) -> None:
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert "nested deeper" in body["error"]
    if relay:
        assert body.get("success") is False or body.get("valid") is False


@pytest.mark.django_db(transaction=True)  # /next works on another thread
@pytest.mark.parametrize("path", RELAY_ROUTES)
@pytest.mark.parametrize("body", TOO_DEEP_FOR_PYTHON + [DEEP])
def test_relay_routes_answer_400_with_a_key(relay_client, path, body):
    assert_json_400(relay_client.generic("POST", path, body, content_type="application/json"), relay=True)


@pytest.mark.parametrize("path", ["/relay/verify", "/relay/status"])
def test_any_content_type_is_parsed_with_the_same_limit(relay_client, path):
    assert_json_400(relay_client.generic("POST", path, TOO_DEEP_FOR_PYTHON[0], content_type="text/plain"), relay=True)


@pytest.mark.django_db
@pytest.mark.parametrize("path", RELAY_ROUTES)
def test_relay_routes_without_a_key_never_answer_500(path):
    response = APIClient().generic("POST", path, TOO_DEEP_FOR_PYTHON[0], content_type="application/json")
    assert response.status_code in (400, 401), response.content[:300]
    assert response.json()["error"]


@pytest.mark.parametrize("path", OPERATOR_ROUTES)
@pytest.mark.parametrize("body", TOO_DEEP_FOR_PYTHON + [DEEP])
def test_operator_routes_answer_400(admin_api, path, body):
    assert_json_400(admin_api.generic("POST", path, body, content_type="application/json"), relay=False)


def test_operator_routes_in_a_session_answer_400(admin_client_):
    response = admin_client_.generic("POST", "/api/v1/commands/", TOO_DEEP_FOR_PYTHON[0],
                                     content_type="application/json")
    # A session needs a CSRF token first: 403. Either way, no 500.
    assert response.status_code in (400, 403) and response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", OPERATOR_ROUTES)
def test_operator_routes_without_credentials_never_answer_500(path):
    response = APIClient().generic("POST", path, TOO_DEEP_FOR_PYTHON[0], content_type="application/json")
    assert response.status_code in (400, 401, 403) and response.json()["error"]


def test_the_depth_limit_is_exact_and_configurable(settings):
    nested = lambda depth: b"[" * depth + b"]" * depth  # noqa: E731
    assert json_body.loads(nested(64)) is not None
    with pytest.raises(json_body.exceptions.ParseError):
        json_body.loads(nested(65))
    settings.RELAYHUB = {**settings.RELAYHUB, "MAX_JSON_DEPTH": 3}
    assert json_body.loads(b'{"a": [{"b": 1}]}') == {"a": [{"b": 1}]}
    with pytest.raises(json_body.exceptions.ParseError):
        json_body.loads(b'{"a": [{"b": [1]}]}')


def test_brackets_inside_strings_do_not_count():
    text = ("[" * 500).encode()
    assert json_body.loads(b'{"output": "' + text + b'"}') == {"output": "[" * 500}
