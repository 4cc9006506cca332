"""The rate limit per relay key on relay routes (answer 429)."""

from __future__ import annotations

from types import SimpleNamespace

from rest_framework.throttling import SimpleRateThrottle

from assignments.models import RelayAssignment
from relayhub.web import cache


class RelayKeyThrottle(SimpleRateThrottle):
    """A fixed-window counter per relay key.

    DRF's sliding window stores every request's timestamp and rewrites the
    whole list on each request; a busy relay makes hundreds a second, so a
    counter (one increment per request) is kept instead. A burst of up to
    twice the rate can straddle a window boundary.
    """

    scope = "relay"

    def get_cache_key(self, request, view) -> str | None:
        relay = request.auth
        if not isinstance(relay, RelayAssignment):
            return None
        return self.cache_format % {"scope": self.scope, "ident": relay.pk}

    def allow_request(self, request, view) -> bool:
        key = self.get_cache_key(request, view)
        if self.rate is None or key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        count = cache.count(f"{key}_{window}", self.duration + 1)
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self.window_ends - self.timer(), 0.0)

    def allow_relay(self, relay: RelayAssignment) -> bool:
        """The same limit for views outside DRF (the async relay routes)."""
        return self.allow_request(SimpleNamespace(auth=relay), None)
