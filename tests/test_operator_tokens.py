"""Operator API tokens: stored only as a digest, expiring, revocable (finding 4)."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from relayhub.web import operator_tokens

ROOT = Path(__file__).resolve().parent.parent


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def create_token(username: str, *args: str) -> str:
    out = StringIO()
    call_command("drf_create_token", username, *args, stdout=out)
    line = out.getvalue().strip()
    prefix, suffix = "Generated token ", f" for user {username}"
    assert line.startswith(prefix) and line.endswith(suffix), line
    return line[len(prefix):-len(suffix)]


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("op", "op@example.com", "pw-op-123456")


def test_drf_create_token_prints_one_working_token(operator):
    token = create_token("op")
    assert client_with(token).get("/api/v1/relays/").status_code == 200


def test_the_database_holds_no_usable_token(operator):
    token = create_token("op")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuthToken._meta.db_table}")  # nosec B608 - a model's table name
        stored = [str(value) for row in cursor.fetchall() for value in row]
    assert token not in " ".join(stored)
    for value in stored:
        assert client_with(value).get("/api/v1/relays/").status_code == 401
    assert client_with(token).get("/api/v1/relays/").status_code == 200


def test_drf_authtoken_is_gone_with_its_plain_text_table(transactional_db):
    assert "rest_framework.authtoken" not in settings.INSTALLED_APPS
    call_command("migrate", "relayhub", "zero", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer)")
    call_command("migrate", "relayhub", verbosity=0)
    assert "authtoken_token" not in connection.introspection.table_names()


def test_tokens_expire_after_the_configured_ttl(operator):
    token = create_token("op")
    expiry = AuthToken.objects.get(user=operator).expiry
    assert abs(expiry - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    AuthToken.objects.filter(user=operator).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client_with(token).get("/api/v1/relays/").status_code == 401


@pytest.mark.parametrize("days,expected", [("7", "7 days, 0:00:00"), ("0", "None")])
def test_the_ttl_comes_from_the_environment(days, expected):
    code = "import django; django.setup(); from knox.settings import knox_settings; print(knox_settings.TOKEN_TTL)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "relayhub.settings", "RELAYHUB_API_TOKEN_TTL_DAYS": days}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == expected, result.stderr


def test_reset_revokes_the_users_other_tokens(operator):
    first = create_token("op")
    second = create_token("op", "-r")
    assert client_with(first).get("/api/v1/relays/").status_code == 401
    assert client_with(second).get("/api/v1/relays/").status_code == 200


def test_each_run_without_reset_adds_a_token(operator):
    first, second = create_token("op"), create_token("op")
    assert first != second
    assert all(client_with(token).get("/api/v1/relays/").status_code == 200 for token in (first, second))


def test_an_unknown_user_is_a_command_error(db):
    with pytest.raises(CommandError, match="user nobody does not exist"):
        call_command("drf_create_token", "nobody", stdout=StringIO())
    with pytest.raises(CommandError, match="user nobody does not exist"):
        call_command("revoke_api_tokens", "nobody", stdout=StringIO())


def test_revoke_api_tokens_stops_them_at_once(operator):
    other = User.objects.create_superuser("other", "o@example.com", "pw-other-123456")
    mine, theirs = create_token("op"), operator_tokens.issue(other)
    out = StringIO()
    call_command("revoke_api_tokens", "op", stdout=out)
    assert out.getvalue().strip() == "Revoked 1 API token(s) of user op"
    assert client_with(mine).get("/api/v1/relays/").status_code == 401
    assert client_with(theirs).get("/api/v1/relays/").status_code == 200
    call_command("revoke_api_tokens", "--all-users", stdout=out)
    assert client_with(theirs).get("/api/v1/relays/").status_code == 401


def test_the_admin_lists_tokens_without_the_key_and_deletes_them(admin_client_, operator):
    token = create_token("op")
    stored = AuthToken.objects.get(user=operator)
    listing = admin_client_.get("/admin/knox/authtoken/")
    assert listing.status_code == 200 and "op" in listing.content.decode()
    assert token not in listing.content.decode()
    assert admin_client_.get("/admin/knox/authtoken/add/").status_code == 403
    deleted = admin_client_.post(f"/admin/knox/authtoken/{stored.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert client_with(token).get("/api/v1/relays/").status_code == 401


@pytest.mark.parametrize("header", [b"Token \xff\xfe", b"Token a b", b"Token", b"Token " + b"0" * 64])
def test_bad_token_headers_are_401_json(db, header):
    client = APIClient()
    response = client.get("/api/v1/relays/", HTTP_AUTHORIZATION=header.decode("latin-1"))
    assert response.status_code == 401 and response.json()["error"]


def test_an_inactive_users_token_is_refused(operator):
    token = create_token("op")
    User.objects.filter(pk=operator.pk).update(is_active=False)
    assert client_with(token).get("/api/v1/relays/").status_code == 401
