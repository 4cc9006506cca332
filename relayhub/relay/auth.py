"""Authentication of relays by their ``X-API-Key`` header."""

from __future__ import annotations

import functools

from django.db import connection
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from assignments import keys
from assignments.models import RelayApiKey, RelayAssignment, RelayStatus
from relayhub.relay import rawsql
from relayhub.relay.rawsql import RowReader
from relayhub.web import failed_auth

HEADER = "HTTP_X_API_KEY"
# What relay routes use of the key, the relay and its status; the rest loads on first use.
KEY_READER = RowReader(RelayApiKey, ("id", "lookup", "secret_hash", "revoked_at", "last_used_at"))
RELAY_READER = RowReader(RelayAssignment, ("id", "api_key", "machine_id", "name", "enabled", "transport_key_id"))
STATUS_READER = RowReader(RelayStatus, ("relay", "last_heartbeat_at", "last_connection_event", "config_pending_at",
                                        "last_fetch_at", "not_fetching_since"))
READERS = (KEY_READER, RELAY_READER, STATUS_READER)


@functools.cache
def _key_sql(vendor: str) -> str:
    key, relay, status = (rawsql.table(model) for model in (RelayApiKey, RelayAssignment, RelayStatus))
    selected = ", ".join(rawsql.columns(reader.model, reader.names, alias)
                         for reader, alias in zip(READERS, ("k", "a", "s")))
    return (f"SELECT {selected} FROM {key} k "  # nosec B608
            f"LEFT JOIN {relay} a ON a.{rawsql.column(RelayAssignment, 'api_key')} = k.id "
            f"LEFT JOIN {status} s ON s.{rawsql.column(RelayStatus, 'relay')} = a.id "
            f"WHERE k.{rawsql.column(RelayApiKey, 'lookup')} = %s")


def _load_key(lookup: str) -> tuple[RelayApiKey | None, RelayAssignment | None]:
    """The key and its relay (with the relay's status when it has one), in one statement.

    ``rawsql`` says why not the ORM. A relay without a status row yet loads it on first use.
    """
    rows = rawsql.execute(_key_sql(connection.vendor), [lookup])
    if not rows:
        return None, None
    row, cut = rows[0], len(KEY_READER.fields)
    api_key = KEY_READER.build(row[:cut])
    relay_row, status_row = row[cut:cut + len(RELAY_READER.fields)], row[cut + len(RELAY_READER.fields):]
    if relay_row[0] is None:
        return api_key, None
    relay = RELAY_READER.build(relay_row)
    relay.api_key = api_key
    if status_row[0] is not None:
        relay.status = STATUS_READER.build(status_row)
    return api_key, relay


class RelayPrincipal:
    """``request.user`` for a relay: authenticated, but never an operator."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, relay: RelayAssignment) -> None:
        self.relay = relay
        self.pk = None

    def __str__(self) -> str:
        return f"relay {self.relay.pk}"

    def has_perm(self, *args: object, **kwargs: object) -> bool:
        return False


def resolve_key(raw: object) -> RelayAssignment:
    """The relay for a key; 401 for a bad key, 403 for a disabled or unassigned relay.

    A 401 counts against the client's address, and past the limit any key from there is a 429.
    """
    return failed_auth.guard(lambda: _resolve_key(raw))


def _resolve_key(raw: object) -> RelayAssignment:
    try:
        parsed = keys.parse(raw)
    except keys.MalformedKey as exc:
        raise exceptions.AuthenticationFailed(str(exc)) from None
    api_key, relay = _load_key(parsed.lookup)
    if api_key is None or not keys.secret_matches(parsed.secret, api_key.secret_hash):
        raise exceptions.AuthenticationFailed("invalid API key")
    if api_key.is_revoked:
        raise exceptions.AuthenticationFailed("API key revoked")
    if relay is None:
        raise exceptions.PermissionDenied("API key is not assigned to a relay")
    if not relay.enabled:
        raise exceptions.PermissionDenied("relay is disabled")
    return relay


def authenticate_relay(raw: object) -> RelayAssignment:
    """Resolve the key and count the request as a sign of life."""
    relay = resolve_key(raw)
    now = timezone.now()
    relay.api_key.note_use(now)
    status = getattr(relay, "status", None) or RelayStatus.objects.get_or_create(relay=relay)[0]
    status.record_sign_of_life(now)
    relay.status = status
    return relay


class RelayKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[RelayPrincipal, RelayAssignment] | None:
        raw = request.META.get(HEADER)
        if raw is None:
            return None
        relay = authenticate_relay(raw)
        return RelayPrincipal(relay), relay

    def authenticate_header(self, request: Request) -> str:
        return "X-API-Key"


class IsRelay(BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, RelayAssignment)
