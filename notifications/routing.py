"""Which rules an event matches, and the deliveries it makes: one per channel, however many rules pick it.

A rule matches an event of its kind when each filter it has holds: ``relay`` is one of the relays the
event concerns; ``selector`` matches the labels of one of them; ``template_name`` is the job template the
event came from; ``threshold`` is the event's N. The relays an event concerns: the relay itself for a
relay event; for a command, the relay that claimed it, or, never claimed, every relay of its machine;
for a batch or an approval, every relay of its machines. An event that concerns no relay (or came from
no template) matches no rule filtering by one.
"""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction

from assignments.labels import LabelError, parse_selector
from notifications.events import Occurrence
from notifications.models import Channel, Event, Rule


def listening(kinds: list[str] | set[str]) -> list[str]:
    """Of these event kinds, those some enabled rule with an enabled channel listens for (one query)."""
    rules = Rule.objects.filter(enabled=True, channel__enabled=True, event__in=list(kinds))
    return sorted(set(rules.values_list("event", flat=True)))


def thresholds(kind: str) -> list[int]:
    rules = Rule.objects.filter(enabled=True, channel__enabled=True, event=kind, threshold__isnull=False)
    return sorted(set(rules.values_list("threshold", flat=True)))


def matches(rule: Rule, occurrence: Occurrence) -> bool:
    if rule.event != occurrence.kind or (rule.threshold is not None and rule.threshold != occurrence.threshold):
        return False
    if rule.relay_id is not None and str(rule.relay_id) not in {relay_id for relay_id, _ in occurrence.relays}:
        return False
    if rule.selector:
        try:
            selector = parse_selector(rule.selector)
        except LabelError:
            return False
        if not any(selector.matches(labels) for _, labels in occurrence.relays):
            return False
    return not rule.template_name or rule.template_name == occurrence.template


def route(occurrences: list[Occurrence]) -> list[tuple[str, str, int | None]]:
    """Record each occurrence some rule matches as an Event (once per key); ``(event, channel, rule)`` to send."""
    if not occurrences:
        return []
    rules = list(Rule.objects.filter(enabled=True, channel__enabled=True,
                                     event__in={o.kind for o in occurrences}).order_by("pk"))
    deliveries = []
    for occurrence in occurrences:
        chosen: dict[str, int] = {}
        for rule in rules:
            if matches(rule, occurrence):
                chosen.setdefault(str(rule.channel_id), rule.pk)
        event = record(occurrence) if chosen else None
        if event is not None:
            deliveries += [(str(event.pk), channel_id, rule_id) for channel_id, rule_id in chosen.items()]
    return deliveries


def record(occurrence: Occurrence) -> Event | None:
    """The event, stored with its id in its payload; None if one with its key was stored already."""
    event_id = uuid.uuid4()
    try:
        with transaction.atomic():
            return Event.objects.create(id=event_id, kind=occurrence.kind, key=occurrence.key,
                                        payload={"id": str(event_id), **occurrence.payload})
    except IntegrityError:
        return None


def test_delivery(channel: Channel, occurrence: Occurrence) -> tuple[str, str, None]:
    event = record(occurrence)
    return str(event.pk), str(channel.pk), None
