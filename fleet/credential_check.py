"""Whether the credential a target names can log in to it: held by its relays, and bound to its address."""

from __future__ import annotations

from credentials.models import CredentialInventoryItem, SharedCredential, binds
from fleet.models import SSHTarget


def problems(target: SSHTarget) -> list[str]:
    """What stands between the target's relays and a login with its credential; empty when nothing does."""
    name = target.credential_name
    if not name:
        return []
    found = []
    shared = SharedCredential.objects.filter(name=name).first()
    if shared is not None:
        if not binds(shared.target_host, target.host, target.port):
            found.append(f"shared credential {name!r} is bound to {shared.target_host or 'no host'}, "
                         f"so it is never offered to {target.address}")
        assigned = set(shared.assigned_relays.values_list("pk", flat=True))
        found += [f"shared credential {name!r} is not assigned to relay {relay.name!r}"
                  for relay in target.relays.all() if relay.pk not in assigned]
        return found
    held = {item.relay_id: item for item in CredentialInventoryItem.objects.filter(
        credential_name=name, relay__in=target.relays.all())}
    for relay in target.relays.all():
        item = held.get(relay.pk)
        if item is None:
            found.append(f"relay {relay.name!r} reports no credential named {name!r}")
        elif not binds(item.target_host, target.host, target.port):
            found.append(f"relay {relay.name!r} holds {name!r} bound to {item.target_host or 'no host'}, "
                         f"so it is never offered to {target.address}")
    return found
