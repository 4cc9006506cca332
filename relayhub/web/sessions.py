"""Database sessions whose rows cannot be replayed from a dump.

The cookie carries the session key as Django makes it; the database row is
keyed by a digest of it, so a key read from the table is useless as a cookie.

The digest is SHA-256 cut to its first 160 bits (40 hex characters), which is
exactly the width of Django's ``session_key`` column: the stock ``Session``
model, its admin, ``clearsessions`` and migrations all keep working. Finding
a cookie for a stored digest means a preimage of 160 bits, and Django's keys
(32 characters of ``[a-z0-9]``) hold about 165 bits, so the cut loses nothing
an attacker could use. Sessions made before this backend are simply not found:
their users sign in again.
"""

from __future__ import annotations

import hashlib

from django.contrib.sessions.backends import db
from django.utils import timezone

DIGEST_HEX_CHARS = 40


def stored_key(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()[:DIGEST_HEX_CHARS]


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):  # noqa: ANN202 - Django's signature
        try:
            return self.model.objects.get(session_key=stored_key(self.session_key),
                                          expire_date__gt=timezone.now())
        except self.model.DoesNotExist:
            self._session_key = None
            return None

    async def _aget_session_from_db(self):  # noqa: ANN202 - Django's signature
        try:
            return await self.model.objects.aget(session_key=stored_key(self.session_key),
                                                 expire_date__gt=timezone.now())
        except self.model.DoesNotExist:
            self._session_key = None
            return None

    def exists(self, session_key: str) -> bool:
        return self.model.objects.filter(session_key=stored_key(session_key)).exists()

    async def aexists(self, session_key: str) -> bool:
        return await self.model.objects.filter(session_key=stored_key(session_key)).aexists()

    def create_model_instance(self, data: dict):  # noqa: ANN201 - Django's signature
        instance = super().create_model_instance(data)
        instance.session_key = stored_key(instance.session_key)
        return instance

    async def acreate_model_instance(self, data: dict):  # noqa: ANN201 - Django's signature
        instance = await super().acreate_model_instance(data)
        instance.session_key = stored_key(instance.session_key)
        return instance

    def delete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if session_key is not None:
            self.model.objects.filter(session_key=stored_key(session_key)).delete()

    async def adelete(self, session_key: str | None = None) -> None:
        session_key = session_key or self.session_key
        if session_key is not None:
            await self.model.objects.filter(session_key=stored_key(session_key)).adelete()
