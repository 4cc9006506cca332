"""One delivery attempt: send, record it as a ``Delivery``, and say when to try again.

Attempts that fail (no answer, a timeout, an answer other than 2xx, an email backend error) are tried
again after ``NOTIFY_RETRY_BASE_S`` x 3^(n-1) seconds (10, 30, 90, 270 s by default) until
``NOTIFY_MAX_ATTEMPTS`` (5) have been made. An address the guard refuses, or a secret that no longer
opens, is not tried again. A disabled (or deleted) channel is skipped.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from credentials.crypto import DecryptionError
from notifications import guard, senders
from notifications.models import Channel, Delivery, DeliveryStatus, Event, Rule

log = logging.getLogger(__name__)
MAX_ERROR = 500


def retry_delay(attempt: int) -> int:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return settings.RELAYHUB["NOTIFY_RETRY_BASE_S"] * 3 ** (attempt - 1)


def attempt(event_id: str, channel_id: str, rule_id: int | None, number: int) -> int | None:
    """Make attempt ``number``; the seconds after which to make the next one, or None when done."""
    event = Event.objects.filter(pk=event_id).first()
    channel = Channel.objects.filter(pk=channel_id).first()
    if event is None or channel is None:
        return None  # pruned or deleted meanwhile
    rule = Rule.objects.filter(pk=rule_id).first() if rule_id is not None else None
    started = time.monotonic()
    http_status, error, again = None, "", False
    if not channel.enabled:
        status, error = DeliveryStatus.SKIPPED, "the channel is disabled"
    else:
        try:
            http_status = senders.send(channel, event).http_status
            status = DeliveryStatus.SUCCEEDED
        except guard.Refused as exc:
            status, error = DeliveryStatus.REFUSED, str(exc)
        except DecryptionError:
            status, error = DeliveryStatus.FAILED, "the channel's secret does not open under CREDENTIAL_KEYS"
        except senders.SendFailed as exc:
            http_status, error, again = exc.http_status, str(exc), True
            status = DeliveryStatus.FAILED
        except Exception as exc:  # noqa: BLE001 - recorded as this attempt's failure, and tried again
            log.error("notification attempt broke: %s", type(exc).__name__)
            status, error, again = DeliveryStatus.FAILED, f"unexpected error: {type(exc).__name__}", True
    again = again and number < settings.RELAYHUB["NOTIFY_MAX_ATTEMPTS"]
    if again:
        status = DeliveryStatus.RETRYING
    error = senders.scrub(error, channel)[:MAX_ERROR]
    duration_ms = int((time.monotonic() - started) * 1000)
    Delivery.objects.create(event=event, channel=channel, rule=rule, attempt=number, status=status,
                            http_status=http_status, error=error, duration_ms=duration_ms)
    level = logging.INFO if status == DeliveryStatus.SUCCEEDED else logging.WARNING
    log.log(level, "notification %s to channel %r: attempt %d %s%s", event.kind, channel.name, number, status,
            f" ({error})" if error else "")
    return retry_delay(number) if again else None
