"""`/`, the address `make run` prints, opens the admin; the routes beside it answer as before."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_root_redirects_to_the_admin() -> None:
    response = Client().get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_the_admin_still_asks_for_a_login() -> None:
    response = Client().get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_relay_and_api_routes_are_not_redirected(relay_client, admin_api) -> None:
    assert relay_client.post("/relay/heartbeat").json()["success"] is True
    assert admin_api.get("/api/v1/commands/").status_code == 200
    unknown = Client().get("/relay/no-such-route")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not found"
    assert Client().get("/api/v1/no-such-route").status_code == 404
