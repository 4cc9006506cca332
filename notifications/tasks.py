"""Celery tasks of notifications: build and route an event, make each delivery attempt, prune old events.

Task arguments are ids and plain values only: never a payload, a URL or a secret, which a broker keeps.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from notifications import delivering, events, routing
from notifications.models import Channel, Event, EventKind

log = logging.getLogger(__name__)


def build(source: str, refs: dict, kinds: list[str], at: str) -> list[events.Occurrence]:
    if source == "relay_event":
        return events.from_relay_event(refs["relay_event_id"], at)
    if source == "command":
        return events.from_command(refs["command_id"], kinds, routing.thresholds(EventKind.FAILURE_REPEATED), at)
    if source == "batch":
        return events.from_batch(refs["batch_id"], at)
    if source == "approval":
        return events.from_approval(refs, at)
    if source == "scheduled_run":
        return events.from_scheduled_run(refs, at)
    if source == "not_fetching":
        return events.from_not_fetching(refs, at)
    raise ValueError(f"unknown event source {source!r}")


@shared_task(ignore_result=True)
def dispatch(source: str, refs: dict, kinds: list[str], at: str) -> int:
    """Build the events ``source`` raised, record those some rule matches, and queue their first attempts."""
    found = [occurrence for occurrence in build(source, refs, kinds, at) if occurrence.kind in kinds]
    queued = routing.route(found)
    for event_id, channel_id, rule_id in queued:
        enqueue(event_id, channel_id, rule_id, 1)
    return len(queued)


@shared_task(ignore_result=True)
def deliver(event_id: str, channel_id: str, rule_id: int | None, number: int) -> None:
    """One attempt; a failed one queues the next, after its back-off."""
    delay = delivering.attempt(event_id, channel_id, rule_id, number)
    if delay is not None:
        enqueue(event_id, channel_id, rule_id, number + 1, countdown=delay)


def enqueue(event_id: str, channel_id: str, rule_id: int | None, number: int, countdown: int = 0) -> None:
    deliver.apply_async((event_id, channel_id, rule_id, number), countdown=countdown or None)


def send_test(channel: Channel) -> Event:
    """A test event to this channel alone, whatever the rules; returns the event (its deliveries follow)."""
    event_id, channel_id, _ = routing.test_delivery(channel, events.test_event(channel.name, events.now_iso()))
    enqueue(event_id, channel_id, None, 1)
    return Event.objects.get(pk=event_id)


@shared_task
def prune_notifications() -> int:
    """Delete events (and their deliveries) older than ``NOTIFY_RETENTION_DAYS``."""
    config = settings.RELAYHUB
    cutoff = timezone.now() - timedelta(days=config["NOTIFY_RETENTION_DAYS"])
    ids = list(Event.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[: config["SWEEP_BATCH"] * 10])
    return Event.objects.filter(pk__in=ids).delete()[0]
