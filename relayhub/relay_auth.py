"""Authentication of relays by their ``X-API-Key`` header."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from assignments import keys
from assignments.models import RelayApiKey, RelayAssignment, RelayStatus

HEADER = "HTTP_X_API_KEY"
# What relay routes use of the key, the relay and its status; the rest loads on first use.
AUTH_FIELDS = (
    "lookup", "secret_hash", "revoked_at", "last_used_at",
    "assignment__api_key", "assignment__machine_id", "assignment__name", "assignment__enabled",
    "assignment__transport_key_id",
    "assignment__status__last_heartbeat_at", "assignment__status__last_connection_event",
)


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
    """The relay for a key; 401 for a bad key, 403 for a disabled or unassigned relay."""
    try:
        parsed = keys.parse(raw)
    except keys.MalformedKey as exc:
        raise exceptions.AuthenticationFailed(str(exc)) from None
    api_key = (
        RelayApiKey.objects.select_related("assignment", "assignment__status").only(*AUTH_FIELDS)
        .filter(lookup=parsed.lookup).first()
    )
    if api_key is None or not keys.secret_matches(parsed.secret, api_key.secret_hash):
        raise exceptions.AuthenticationFailed("invalid API key")
    if api_key.is_revoked:
        raise exceptions.AuthenticationFailed("API key revoked")
    relay = getattr(api_key, "assignment", None)
    if relay is None:
        raise exceptions.PermissionDenied("API key is not assigned to a relay")
    if not relay.enabled:
        raise exceptions.PermissionDenied("relay is disabled")
    relay.api_key = api_key
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
