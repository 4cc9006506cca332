"""``GET /relay/hello`` names the service without a key, so an agent can tell a relayhub before it sends one."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/relay/hello", "/relay/hello/"])
def test_it_answers_without_a_key(path):
    response = APIClient().get(path)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"service": "relayhub"}


def test_it_ignores_a_bad_key():
    client = APIClient()
    client.credentials(HTTP_X_API_KEY="not-a-key")

    assert client.get("/relay/hello").json() == {"service": "relayhub"}


def test_it_only_answers_get():
    assert APIClient().post("/relay/hello", {}, format="json").status_code == 405
