"""Which relays hold a shared credential, and who may change that.

Putting a credential on a relay, taking it off, or changing one that relays
hold (its value, type, name or the host it is bound to) changes what those
relays trust: it needs ``configure_relay`` on each of them. Holding the
credentials model permissions alone is not enough, and ``run_command`` never is.
Assignments to relays a user cannot see are neither shown to them nor dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assignments import access
from assignments.models import RelayAssignment

# Changing these changes what the relays holding the credential receive.
PUSHED_FIELDS = ("name", "credential_type", "target_host")


class AssignmentRefused(Exception):
    pass


def visible(user: Any, relays: Iterable[RelayAssignment]) -> list[RelayAssignment]:
    """The relays of ``relays`` the user may see, in order."""
    if user.has_perm(access.VIEW):
        return list(relays)
    visible = set(access.relays_for(user).values_list("pk", flat=True))
    return [relay for relay in relays if relay.pk in visible]


def merge(user: Any, current: Iterable[RelayAssignment], submitted: Iterable[RelayAssignment] | None,
          content_changed: bool) -> list[RelayAssignment]:
    """The relays that will hold the credential after the user's change; ``AssignmentRefused`` if not allowed.

    ``submitted`` is what the user asked for among the relays they see (None: unchanged).
    """
    held = {relay.pk: relay for relay in current}
    if user.has_perm(access.CONFIGURE):
        return list(held.values()) if submitted is None else list(submitted)
    may = set(access.relays_for(user, access.CONFIGURE).values_list("pk", flat=True))
    final = dict(held)
    if submitted is not None:
        wanted = {relay.pk: relay for relay in submitted}
        visible = set(access.relays_for(user).values_list("pk", flat=True))
        added = [relay for pk, relay in wanted.items() if pk not in held]
        removed = [relay for pk, relay in held.items() if pk not in wanted and pk in visible]
        refused = [relay for relay in added + removed if relay.pk not in may]
        if refused:
            raise AssignmentRefused(
                f"you may not change whether {_names(refused)} hold this credential: that needs "
                "configure_relay on each relay")
        # Relays the user may not configure keep the credential: hidden ones were never shown to be left out.
        final = {**{pk: relay for pk, relay in held.items() if pk not in may}, **wanted}
    if content_changed and any(pk not in may for pk in final):
        raise AssignmentRefused(
            "this credential is held by relays you may not configure; changing its value, type, name or "
            "target host needs configure_relay on each relay that holds it")
    return list(final.values())


def _names(relays: list[RelayAssignment]) -> str:
    return ", ".join(f"relay {relay.name!r}" for relay in relays)
