"""System checks for relayhub's own settings, run by every manage.py command and by ``check --deploy``.

Messages name a key ring's entries by position only: they never print any
part of a setting that may hold key material.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from rest_framework.throttling import SimpleRateThrottle

from assignments.transport import read_key_ring

KEY_RINGS = (("CREDENTIAL_KEYS", "relayhub.E001"), ("TRANSPORT_KEYS", "relayhub.E002"))
FORMAT_HINT = "Give 'id:<base64 of 32 random bytes>[,id:...]', e.g. k1:$(head -c32 /dev/urandom | base64)."


def key_ring_problems(setting: str, spec: Any, error_id: str) -> list[checks.CheckMessage]:
    """What is wrong with a key ring setting, as the parser used at run time reads it."""
    _, problems = read_key_ring(spec)
    return [checks.Error(f"{setting}: {problem}", hint=FORMAT_HINT, id=error_id) for problem in problems]


@checks.register(checks.Tags.security)
def key_rings_are_well_formed(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [problem for setting, error_id in KEY_RINGS
            for problem in key_ring_problems(setting, getattr(settings, setting, None), error_id)]


def allowed_hosts_problems(hosts: list[str]) -> list[checks.CheckMessage]:
    if "*" not in hosts:
        return []
    return [checks.Error(
        "ALLOWED_HOSTS contains '*': any Host header is accepted, so links the hub builds "
        "(password resets, redirects) can point at an attacker's host.",
        hint="List the host names the hub is served under, e.g. ALLOWED_HOSTS=hub.example.com.",
        id="relayhub.E003",
    )]


@checks.register(checks.Tags.security, deploy=True)
def allowed_hosts_are_explicit(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return allowed_hosts_problems(list(settings.ALLOWED_HOSTS))


def failed_auth_problems(rate: Any, proxy_count: Any) -> list[checks.CheckMessage]:
    problems = []
    try:
        allowed, period = SimpleRateThrottle.parse_rate(None, rate)
        valid = allowed is not None and allowed > 0
    except (AttributeError, KeyError, IndexError, ValueError):
        valid = False
    if not valid:
        problems.append(checks.Error(
            f"RELAYHUB_FAILED_AUTH_RATE must be like '60/min' (a positive count per s, min, hour or day), "
            f"not {rate!r}", id="relayhub.E004"))
    if not isinstance(proxy_count, int) or proxy_count < 0:
        problems.append(checks.Error(
            f"RELAYHUB_TRUSTED_PROXY_COUNT must be 0 or more, not {proxy_count!r}", id="relayhub.E005"))
    return problems


@checks.register(checks.Tags.security)
def failed_auth_limit_is_valid(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return failed_auth_problems(settings.RELAYHUB["FAILED_AUTH_RATE"], settings.RELAYHUB["TRUSTED_PROXY_COUNT"])


def refuse_to_serve_with_errors() -> None:
    """Run the security checks when a server loads the app (uvicorn runs no system checks), and stop on an error.

    A malformed key ring would otherwise start serving and fail on the first credential it touched.
    """
    from django.core.exceptions import ImproperlyConfigured

    errors = [message for message in checks.run_checks(tags=[checks.Tags.security])
              if message.level >= checks.ERROR]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{error.id}: {error.msg}" for error in errors))
