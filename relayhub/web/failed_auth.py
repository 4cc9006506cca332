"""Failed authentication, limited per client address (SPEC §7).

Every refused relay key and operator token counts against the address it came
from, in a fixed window in the Django cache (Redis when configured, so every
hub process adds to one count). Past ``FAILED_AUTH_RATE`` (60/min) the address
gets 429 with ``Retry-After`` until the window ends, for any credential, the
right one too: refusing only wrong guesses would tell a guesser which one was
right, and would not limit the guessing at all.

A successful request never touches the cache. A process that has seen an
address pass the limit remembers it until the window ends and refuses it
before looking at its key; another process learns at that address's next
failure there. Across N processes an address gets at most N attempts more
than the limit in a window.

The address is ``REMOTE_ADDR``, or, behind ``TRUSTED_PROXY_COUNT`` proxies that
each append to ``X-Forwarded-For``, the entry the outermost of them added; an
IPv6 client counts by its /64, which one host usually holds whole.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache as django_cache
from django.http import HttpRequest, JsonResponse
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from relayhub.web import cache

T = TypeVar("T")
# DRF appends " Expected available in N seconds."
MESSAGE = "too many failed authentication attempts from this address."

_request: ContextVar[HttpRequest | None] = ContextVar("relayhub_request", default=None)
_refused_until: dict[str, float] = {}  # address -> end of its window (time.time())
_lock = threading.Lock()
clock = time.time


def bind(request: HttpRequest) -> Token:
    """Make the request known to credential checks further down (``ClientAddressMiddleware``)."""
    return _request.set(request)


def unbind(token: Token) -> None:
    _request.reset(token)


def current_meta() -> Mapping[str, Any] | None:
    """The META of the request being served here, or None outside one (the audit trail takes the address)."""
    request = _request.get()
    return None if request is None else request.META


def current_user() -> Any:
    """The signed-in user of the request being served here (DRF sets it on the request it wraps), or None."""
    user = getattr(_request.get(), "user", None)
    return user if user is not None and user.is_authenticated else None


@functools.cache
def _parse_rate(rate: str) -> tuple[int, int]:
    return SimpleRateThrottle.parse_rate(None, rate)  # uses nothing of the instance


def rate() -> tuple[int, int]:
    """(failures allowed, window in seconds) from ``RELAYHUB["FAILED_AUTH_RATE"]``, e.g. "60/min"."""
    return _parse_rate(settings.RELAYHUB["FAILED_AUTH_RATE"])


def client_address(meta: Mapping[str, Any]) -> str:
    address = str(meta.get("REMOTE_ADDR") or "")
    hops = settings.RELAYHUB["TRUSTED_PROXY_COUNT"]
    if hops > 0:
        forwarded = [part.strip() for part in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
        if len(forwarded) >= hops and forwarded[-hops]:
            address = forwarded[-hops]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def _counter_key(address: str, window: int) -> str:
    return f"failed_auth:{address}:{window}"


def _refusal(wait: float) -> exceptions.Throttled:
    return exceptions.Throttled(wait=max(1, math.ceil(wait)), detail=MESSAGE)


def refuse_if_over(address: str) -> None:
    until = _refused_until.get(address)
    if until is None:
        return
    wait = until - clock()
    if wait > 0:
        raise _refusal(wait)
    with _lock:
        _refused_until.pop(address, None)


def record_failure(address: str) -> None:
    """Count one failure; raises the 429 once the address is past its limit."""
    allowed, period = rate()
    now = clock()
    window = int(now // period)
    if cache.count(_counter_key(address, window), period + 1) <= allowed:
        return
    until = (window + 1) * period
    with _lock:
        for other, other_until in list(_refused_until.items()):
            if other_until <= now:
                del _refused_until[other]
        _refused_until[address] = until
    raise _refusal(until - now)


def guard(check: Callable[[], T]) -> T:
    """Run a credential check for the current request's address: refused when over the limit, failures counted."""
    meta = current_meta()
    if meta is None:  # not within a request (a management command, a test calling in directly)
        return check()
    address = client_address(meta) if _refused_until else None
    if address is not None:
        refuse_if_over(address)
    try:
        return check()
    except exceptions.AuthenticationFailed:
        record_failure(address or client_address(meta))
        raise


def forget(address: str) -> None:
    """Drop an address's count and refusal in this process, e.g. between tests that share one address."""
    _, period = rate()
    window = int(clock() // period)
    django_cache.delete_many([_counter_key(address, window - 1), _counter_key(address, window)])
    with _lock:
        _refused_until.pop(address, None)


def login_client_address(request: HttpRequest) -> str | None:
    """The address django-axes locks admin logins out by (``AXES_CLIENT_IP_CALLABLE``): the same as above."""
    address = client_address(request.META)
    try:
        ipaddress.ip_network(address, strict=False)  # axes stores it in an IP address column
    except ValueError:
        return None
    return address


def login_lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """What a locked-out admin login gets (``AXES_LOCKOUT_CALLABLE``): a JSON 429 like every other refusal."""
    cooloff = settings.AXES_COOLOFF_TIME
    return JsonResponse(
        {"error": "too many failed logins for this username from this address; try again later"},
        status=429, headers={"Retry-After": str(math.ceil(cooloff.total_seconds()))},
    )
