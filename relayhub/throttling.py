"""Rate limits: per relay key on relay routes, per operator on the API (answer 429)."""

from __future__ import annotations

from types import SimpleNamespace

from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle

from assignments.models import RelayAssignment


class RelayKeyThrottle(SimpleRateThrottle):
    scope = "relay"

    def get_cache_key(self, request, view) -> str | None:
        relay = request.auth
        if not isinstance(relay, RelayAssignment):
            return None
        return self.cache_format % {"scope": self.scope, "ident": relay.pk}

    def allow_relay(self, relay: RelayAssignment) -> bool:
        """The same limit for views outside DRF (the async long-poll)."""
        return self.allow_request(SimpleNamespace(auth=relay), None)


class OperatorThrottle(UserRateThrottle):
    scope = "operator"
