"""Sessions a database dump cannot replay: the table holds only digests of the cookies (finding 4)."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from relayhub.web.sessions import SessionStore, stored_key

PASSWORD = "pw-session-123456"


@pytest.fixture
def staff(db):
    from django.contrib.auth.models import User

    return User.objects.create_superuser("sess", "s@example.com", PASSWORD)


def signed_in(client: Client) -> Client:
    response = client.post("/admin/login/?next=/admin/", {"username": "sess", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/admin/", response.content[:300]
    return client


def client_with_cookie(value: str) -> Client:
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = value
    return client


def test_the_engine_is_the_hashing_one():
    assert settings.SESSION_ENGINE == "relayhub.web.sessions"


def test_a_row_from_the_table_is_no_cookie_but_the_real_cookie_works(staff):
    cookie = signed_in(Client()).cookies[settings.SESSION_COOKIE_NAME].value
    [row] = Session.objects.all()
    assert row.session_key == stored_key(cookie) != cookie
    assert cookie not in row.session_key and cookie not in row.session_data

    assert client_with_cookie(cookie).get("/admin/").status_code == 200
    replayed = client_with_cookie(row.session_key).get("/admin/")
    assert replayed.status_code == 302 and "/admin/login/" in replayed["Location"]


def test_logout_deletes_the_row_and_the_cookie_stops_working(staff):
    client = signed_in(Client())
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.post("/admin/logout/").status_code == 200
    assert not Session.objects.filter(session_key=stored_key(cookie)).exists()
    assert client_with_cookie(cookie).get("/admin/").status_code == 302


def test_cycling_the_key_moves_the_row(db):
    store = SessionStore()
    store["answer"] = 42
    store.save()
    first = store.session_key
    store.cycle_key()
    assert store.session_key != first and store["answer"] == 42
    assert list(Session.objects.values_list("session_key", flat=True)) == [stored_key(store.session_key)]


def test_the_admin_works_through_a_signed_in_session(staff, relay):
    client = signed_in(Client())
    for path in ["/admin/", "/admin/assignments/relayassignment/", f"/admin/assignments/relayassignment/{relay.pk}/change/"]:
        assert client.get(path).status_code == 200, path


def test_the_store_round_trips_and_expires(db):
    store = SessionStore()
    store["answer"] = 42
    store.save()
    key = store.session_key
    assert Session.objects.filter(session_key=stored_key(key)).exists()
    assert SessionStore(key)["answer"] == 42 and store.exists(key)
    assert not store.exists(stored_key(key))
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert SessionStore(key).get("answer") is None
    call_command("clearsessions")
    assert not Session.objects.exists()


def test_the_async_methods_use_the_digest_too(transactional_db):
    store = SessionStore()
    store["answer"] = 42
    async_to_sync(store.asave)()
    key = store.session_key
    assert Session.objects.filter(session_key=stored_key(key)).exists()
    assert async_to_sync(SessionStore(key).aget)("answer") == 42
    assert async_to_sync(store.aexists)(key) and not async_to_sync(store.aexists)(stored_key(key))
    assert async_to_sync(SessionStore(stored_key(key)).aget)("answer") is None
    async_to_sync(store.adelete)()
    assert not Session.objects.exists()
