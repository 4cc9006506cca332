"""Deliver a shared credential to its relays as ``credential`` config pushes."""

from __future__ import annotations

from configpush.models import ConfigPush, PushStatus, PushType
from credentials.models import SharedCredential


def queue_credential_pushes(credential: SharedCredential, created_by=None, replaces: str = "") -> list[ConfigPush]:
    """One push per assigned relay, encrypted for that relay.

    Unsent copies are dropped first, also those under ``replaces``, the name
    the credential had before a rename.
    """
    pushes = []
    names = {credential.name, replaces} - {""}
    for relay in credential.assigned_relays.select_related("api_key"):
        ConfigPush.objects.filter(relay=relay, push_type=PushType.CREDENTIAL, status=PushStatus.PENDING,
                                  payload__name__in=names).delete()
        payload = {"name": credential.name, "credentialType": credential.credential_type,
                   "encryptedValue": credential.encrypted_for_secret(relay.transport_secret())}
        if credential.target_host:
            payload["targetHost"] = credential.target_host
        pushes.append(ConfigPush.objects.create(relay=relay, push_type=PushType.CREDENTIAL, payload=payload,
                                                created_by=created_by))
    return pushes
