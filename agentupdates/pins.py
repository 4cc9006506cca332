"""Which agent versions a relay may update to: its own pin, and every label pin whose selector matches it."""

from __future__ import annotations

from agentupdates.models import AgentVersionPin
from assignments.labels import LabelError, parse_selector


def label_pins() -> list[tuple[object, AgentVersionPin]]:
    """Every label pin with its parsed selector (one that no longer parses pins nothing)."""
    parsed = []
    for pin in AgentVersionPin.objects.all():
        try:
            parsed.append((parse_selector(pin.selector), pin))
        except LabelError:
            continue
    return parsed


def conflicts(relay, version: str, pins: list[tuple[object, AgentVersionPin]]) -> list[str]:
    """Why ``relay`` may not update to ``version``: each pin that names another version."""
    found = []
    if relay.agent_version_pin and relay.agent_version_pin != version:
        found.append(f"relay {relay.name!r} is pinned to agent version {relay.agent_version_pin}")
    for selector, pin in pins:
        if pin.version != version and selector.matches(relay.labels):
            why = f" ({pin.note})" if pin.note else ""
            found.append(f"relay {relay.name!r} is pinned to agent version {pin.version} by the label pin "
                         f"{pin.selector!r}{why}")
    return found
