"""The admin login locks a username out from an address after repeated failures (django-axes, finding 7)."""

from datetime import timedelta
from io import StringIO

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from relayhub.web import operator_tokens

PASSWORD = "pw-lockout-123456"
WRONG = "wrong-password-sentinel-4711"
OTHER_ADDRESS = "10.9.8.7"


@pytest.fixture
def boss(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("boss", "b@example.com", PASSWORD)


def log_in(password: str, username: str = "boss", address: str = "127.0.0.1"):
    return Client(REMOTE_ADDR=address).post("/admin/login/?next=/admin/",
                                            {"username": username, "password": password})


def fail(times: int, **kwargs) -> list[int]:
    return [log_in(WRONG, **kwargs).status_code for _ in range(times)]


def test_the_settings_asked_for():
    assert settings.AXES_FAILURE_LIMIT == 10
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_ten_failures_lock_the_username_out_from_that_address(boss):
    assert fail(9) == [200] * 9  # the login form again, with its error
    locked = log_in(WRONG)
    assert locked.status_code == 429 and locked["Retry-After"] == "900"
    assert "too many failed logins" in locked.json()["error"]
    # The right password waits out the lock too.
    assert log_in(PASSWORD).status_code == 429
    # Another address, or another username from this one, is not locked out.
    assert log_in(PASSWORD, address=OTHER_ADDRESS).status_code == 302
    assert log_in(WRONG, username="someone-else").status_code == 200


def test_the_lock_lifts_after_the_cool_off(boss):
    fail(10)
    assert log_in(PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert log_in(PASSWORD).status_code == 302


def test_a_success_resets_the_count(boss):
    fail(9)
    assert log_in(PASSWORD).status_code == 302
    assert fail(9) == [200] * 9


def test_an_admin_sees_the_lockout_and_deleting_it_unlocks(boss, admin_client_):
    fail(10)
    listing = admin_client_.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "boss" in listing.content.decode()
    assert "/admin/axes/" in admin_client_.get("/admin/").content.decode()
    attempt = AccessAttempt.objects.get(username="boss")
    assert admin_client_.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}).status_code == 302
    assert log_in(PASSWORD).status_code == 302


def test_axes_reset_unlocks(boss):
    fail(10)
    call_command("axes_reset", stdout=StringIO())
    assert log_in(PASSWORD).status_code == 302


def test_the_failed_password_is_not_stored(boss):
    fail(2)
    attempt = AccessAttempt.objects.get(username="boss")
    assert WRONG not in attempt.post_data and WRONG not in attempt.get_data


def test_tokens_and_relay_keys_are_not_locked_out_with_the_login(boss, relay_client):
    fail(10)
    assert log_in(PASSWORD).status_code == 429
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {operator_tokens.issue(boss)}")
    assert api.get("/api/v1/relays/").status_code == 200
    assert relay_client.post("/relay/heartbeat").status_code == 200
