"""Sending one event to one channel: a signed webhook, a Slack-compatible webhook, or email.

HTTP goes through urllib3 to the very address ``guard.check_url`` checked (TLS still verifies the
host's name), never through a proxy from the environment, with no redirect followed and a
``NOTIFY_TIMEOUT_S`` timeout. What is raised names the host, never the URL's path or the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

import certifi
import urllib3
from django.conf import settings
from django.core.mail import send_mail

from notifications import guard
from notifications.models import Channel, ChannelKind, Event, email_addresses

SIGNATURE_HEADER = "X-Relayhub-Signature"
EVENT_HEADER = "X-Relayhub-Event"
USER_AGENT = "relayhub-notifications"
READ_AT_MOST = 64 * 1024  # of a response body, to let the connection go; never stored
CA_BUNDLE = certifi.where()  # the certificate authorities HTTPS webhooks are checked against


class SendFailed(Exception):
    """The attempt failed; the message is safe to store. ``http_status`` when the server answered."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True)
class Sent:
    http_status: int | None = None


def body_of(event: Event) -> bytes:
    return json.dumps(event.payload, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def summary_of(event: Event) -> str:
    return event.payload.get("summary") or event.kind


def send(channel: Channel, event: Event) -> Sent:
    """Send, or raise ``SendFailed`` (worth retrying) or ``guard.Refused`` (not)."""
    if channel.kind == ChannelKind.EMAIL:
        return _email(channel, event)
    if channel.kind == ChannelKind.SLACK:
        body = json.dumps({"text": f"relayhub: {summary_of(event)}"}).encode()
        return post(guard.check_url(channel.url), body, {})
    body = body_of(event)
    headers = {SIGNATURE_HEADER: signature(channel.get_secret(), body), EVENT_HEADER: event.kind,
               "X-Relayhub-Delivery": str(event.pk)}
    return post(guard.check_url(channel.url), body, headers)


def post(target: guard.Target, body: bytes, headers: dict[str, str]) -> Sent:
    """POST JSON to the target's first checked address; 2xx or ``SendFailed``."""
    address = target.addresses[0]
    timeout = urllib3.Timeout(total=settings.RELAYHUB["NOTIFY_TIMEOUT_S"])
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, target.port, timeout=timeout, retries=False,
                                           server_hostname=target.host, assert_hostname=target.host,
                                           cert_reqs="CERT_REQUIRED", ca_certs=CA_BUNDLE)
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False)
    headers = {"Host": target.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        response = pool.urlopen("POST", target.path, body=body, headers=headers, redirect=False, retries=False,
                                assert_same_host=False, preload_content=False)
        response.read(READ_AT_MOST)
        response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise SendFailed(_describe(exc, target)) from None
    finally:
        pool.close()
    if not 200 <= response.status < 300:
        raise SendFailed(f"{target.shown} answered HTTP {response.status}", response.status)
    return Sent(response.status)


def _describe(exc: Exception, target: guard.Target) -> str:
    # NewConnectionError is a ConnectTimeoutError to urllib3: a refused connection is not a timeout.
    if isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"timed out after {settings.RELAYHUB['NOTIFY_TIMEOUT_S']} s talking to {target.shown}"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS with {target.shown} failed (certificate or protocol)"
    cause = exc.__context__ or exc.__cause__
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__context__ or cause.__cause__
    reason = f" ({cause.strerror})" if isinstance(cause, OSError) and cause.strerror else ""
    return f"could not talk to {target.shown}: {type(exc).__name__}{reason}"


def _email(channel: Channel, event: Event) -> Sent:
    summary = summary_of(event)
    body = f"{summary}\n\n{json.dumps(event.payload, indent=2, sort_keys=True)}\n"
    try:
        send_mail(f"[relayhub] {summary}"[:200], body, None, email_addresses(channel.email_to))
    except Exception as exc:  # any backend's failure: SMTP, DNS, TLS...
        raise SendFailed(f"the email backend failed: {type(exc).__name__}") from None
    return Sent()


def scrub(text: str, channel: Channel | None) -> str:
    """Belt and braces: a stored or logged message never holds the channel's secret or URL."""
    if channel is None:
        return text
    if channel.url:
        text = text.replace(channel.url, channel.host or "the channel's URL")
    if channel.has_secret:
        try:
            secret = channel.get_secret()
        except Exception:  # a key no longer in the ring: nothing of it to scrub
            return text
        text = text.replace(secret, "[secret]")
    return text
