import pytest
from django.db import connection

from assignments import keys
from assignments.models import RelayApiKey
from tests.conftest import client_for


def test_generated_key_parses_and_matches_the_scanner_pattern():
    full, parsed = keys.generate()
    assert full.startswith("rly_")
    assert keys.KEY_RE.match(full)
    assert keys.parse(full) == parsed
    assert "_" not in parsed.lookup and "_" not in parsed.secret


@pytest.mark.parametrize("mutate", [
    lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # checksum off by one char
    lambda k: k.replace("rly_", "rlx_"),
    lambda k: k[:20],
    lambda k: k + "x",
    lambda k: k[:10] + "_" + k[11:],
])
def test_malformed_key_is_rejected_by_format_and_checksum(mutate):
    full, _ = keys.generate()
    with pytest.raises(keys.MalformedKey):
        keys.parse(mutate(full))


def test_non_string_key_is_malformed():
    with pytest.raises(keys.MalformedKey):
        keys.parse(12345)


def test_malformed_key_is_refused_before_any_query(db, django_assert_num_queries):
    full, _ = keys.generate()
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_X_API_KEY=full[:-1] + ("0" if full[-1] != "0" else "1"))
    with django_assert_num_queries(0):
        response = client.get("/relay/commands")
    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "malformed API key"}


def test_key_and_transport_secret_are_not_stored_in_plaintext(issued, transactional_db=None):
    row = RelayApiKey.objects.get()
    assert row.secret_hash == keys.hash_secret(keys.parse(issued.api_key).secret)
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            dump = repr(cursor.fetchall())
            assert issued.api_key not in dump, table
            assert keys.parse(issued.api_key).secret not in dump, table
            assert issued.transport_secret not in dump, table


def test_transport_secret_is_stable_and_per_relay(issue_relay):
    first, second = issue_relay(name="a"), issue_relay(name="b")
    assert first.relay.transport_secret() == first.transport_secret
    assert first.transport_secret != second.transport_secret


def test_reissued_key_replaces_the_old_one_and_its_transport_secret(issued):
    relay = issued.relay
    fresh = relay.reissue_key()
    assert client_for(issued).post("/relay/heartbeat").status_code == 401
    assert client_for(fresh).post("/relay/heartbeat").status_code == 200
    assert fresh.transport_secret != issued.transport_secret


def test_revoked_key_is_refused_on_the_next_request(issued, relay_client):
    assert relay_client.post("/relay/heartbeat").status_code == 200
    issued.relay.revoke_key()
    response = relay_client.post("/relay/heartbeat")
    assert response.status_code == 401
    assert response.json() == {"success": False, "error": "API key revoked"}


def test_last_used_is_written_at_most_once_a_minute(issued, relay_client):
    relay_client.post("/relay/heartbeat")
    first = RelayApiKey.objects.get().last_used_at
    relay_client.post("/relay/heartbeat")
    assert first is not None
    assert RelayApiKey.objects.get().last_used_at == first
