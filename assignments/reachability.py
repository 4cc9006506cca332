"""Whether a machine has a relay to take its commands: so that nothing waits in silence for nobody."""

from __future__ import annotations

from collections.abc import Iterable

from assignments.models import RelayAssignment, online_since

ONLINE = "online"
OFFLINE = "offline"  # enabled relays, none heard from lately
NO_RELAY = "no relay"  # no enabled relay with a live key


def of_machines(machine_ids: Iterable[str]) -> dict[str, str]:
    wanted = set(machine_ids)
    live = RelayAssignment.objects.filter(machine_id__in=wanted, enabled=True, api_key__revoked_at__isnull=True)
    enabled = set(live.values_list("machine_id", flat=True))
    online = set(live.filter(status__last_heartbeat_at__gt=online_since()).values_list("machine_id", flat=True))
    return {machine_id: ONLINE if machine_id in online else OFFLINE if machine_id in enabled else NO_RELAY
            for machine_id in wanted}


def problem(machine_id: str, state: str, how: str = "pass queue_if_offline") -> str:
    """Why nothing would run; ``how`` says, in the caller's words, how to queue it all the same."""
    if state == NO_RELAY:
        return (f"no enabled relay serves machine {machine_id!r}; issue one, or {how} to queue it for a relay "
                "yet to come")
    return f"no relay for machine {machine_id!r} is online; {how} to queue it until one connects"


def refusals(machine_ids: Iterable[str], how: str = "pass queue_if_offline") -> list[str]:
    """One message per machine that has no relay online, in a stable order."""
    states = of_machines(machine_ids)
    return [problem(machine_id, state, how) for machine_id, state in sorted(states.items()) if state != ONLINE]
