"""Shared credentials at rest: AES-GCM, row-bound, rotatable (SPEC §2)."""

import base64
import os

import pytest
from django.core.management import call_command

from credentials import crypto
from credentials.models import SharedCredential


def ring(*ids: str) -> str:
    return ",".join(f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}" for key_id in ids)


def make(name: str, value: str) -> SharedCredential:
    credential = SharedCredential(name=name, credential_type="password")
    credential.set_value(value)
    credential.save()
    return credential


def test_value_round_trips_and_is_not_stored_in_plaintext(db):
    credential = make("db", "sentinel-plaintext")
    stored = SharedCredential.objects.get(pk=credential.pk)
    assert b"sentinel-plaintext" not in bytes(stored.ciphertext)
    assert stored.get_value() == "sentinel-plaintext"
    assert "sentinel" not in repr(stored) and "sentinel" not in str(stored)


def test_ciphertext_copied_onto_another_row_does_not_decrypt(db):
    first, second = make("a", "value-a"), make("b", "value-b")
    second.key_id, second.ciphertext = first.key_id, first.ciphertext
    second.save()
    with pytest.raises(crypto.DecryptionError):
        SharedCredential.objects.get(pk=second.pk).get_value()


def test_rotation_re_encrypts_under_the_new_key(db, settings):
    old = ring("old")
    settings.CREDENTIAL_KEYS = old
    credentials = [make(f"c{n}", f"value-{n}") for n in range(3)]
    settings.CREDENTIAL_KEYS = ring("new") + "," + old
    call_command("rotate_credential_keys")
    settings.CREDENTIAL_KEYS = settings.CREDENTIAL_KEYS.split(",")[0]
    for n, credential in enumerate(credentials):
        stored = SharedCredential.objects.get(pk=credential.pk)
        assert stored.key_id == "new"
        assert stored.get_value() == f"value-{n}"


def test_rotating_at_rest_keys_keeps_transport_secrets(relay, settings):
    before = relay.transport_secret()
    settings.CREDENTIAL_KEYS = ring("new")
    assert relay.transport_secret() == before


KEY = base64.b64encode(b"k" * 32).decode()


@pytest.mark.parametrize("spec", ["", "nokey", "a:not-base64!", "a:" + base64.b64encode(b"short").decode(),
                                  f"a:{KEY},a:{KEY}"])
def test_bad_key_rings_are_refused(spec):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        crypto.KeyRing.parse(spec, "CREDENTIAL_KEYS")
