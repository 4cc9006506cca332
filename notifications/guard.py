"""Where webhooks may go: the server-side request forgery guard (AWX's CVE-2020-14327/14328 closed here).

A URL is refused unless its scheme is http or https and every address its host resolves to is public:
not loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the cloud metadata address,
fe80::/10), unspecified, multicast, reserved, shared (CGNAT 100.64/10) or otherwise not global, nor such
an address inside IPv6 (IPv4-mapped, 6to4, NAT64). Hosts listed in ``RELAYHUB_NOTIFY_ALLOWED_HOSTS``
(``host`` or ``host:port``, ``[v6]:port``) skip the address check.

``check_url`` answers a ``Target`` holding the addresses it checked; the sender connects to one of
those and never resolves the name again, so a DNS answer that changes between check and connect
(rebinding) cannot redirect it. Messages name the host and address, never the URL's path or query
(a Slack webhook's path is its token).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
METADATA = ipaddress.ip_address("169.254.169.254")
DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(ValueError):
    """The URL may not be sent to; the message is safe to show and store."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lower-case, IPv6 without brackets
    port: int
    path: str  # path and query, as sent
    addresses: tuple[str, ...]  # every address the host resolved to, all checked

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def shown(self) -> str:
        return self.host_header


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of a URL, for lists and messages; "" when it has none."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


def _parse_allowed(entry: str) -> tuple[str, int | None] | None:
    entry = entry.strip().lower()
    if not entry:
        return None
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:  # a bare name, IPv4 address, or IPv6 address without a port
        host, port = entry, None
    return host, int(port) if port and port.isdecimal() else None


def is_allowed(host: str, port: int) -> bool:
    for entry in settings.RELAYHUB["NOTIFY_ALLOWED_HOSTS"]:
        parsed = _parse_allowed(entry)
        if parsed and parsed[0] == host and parsed[1] in (None, port):
            return True
    return False


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why a webhook may not go to this address, or None for a public one."""
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = forbidden_reason(embedded)
            return f"{reason} (inside IPv6)" if reason else None
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip == METADATA:
        return "cloud metadata"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.version == 4 and ip in CGNAT:
        return "shared (CGNAT)"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


def resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise Refused(f"cannot resolve {host}") from None
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Refused(f"cannot resolve {host}")
    return addresses


def check_url(url: str) -> Target:
    """Resolve and check a webhook URL; ``Refused`` unless it may be sent to (see the module's words)."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        raise Refused("not a valid URL") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise Refused("only http and https URLs are allowed")
    if not host:
        raise Refused("the URL has no host")
    try:  # an internationalised name as DNS and the Host header spell it (xn--...)
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused("the URL's host is not a valid name") from None
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the URL are not supported")
    port = port or DEFAULT_PORTS[parts.scheme]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    addresses = resolve(host, port)
    target = Target(parts.scheme, host, port, path, addresses)
    if is_allowed(host, port):
        return target
    for address in addresses:
        reason = forbidden_reason(ipaddress.ip_address(address.split("%")[0]))
        if reason:
            where = host if host == address else f"{host} resolves to {address}, which"
            article = "an" if reason[0] in "aeiou" else "a"
            raise Refused(f"{where} is {article} {reason} address; webhooks may go only to public addresses "
                          f"unless the host is listed in RELAYHUB_NOTIFY_ALLOWED_HOSTS")
    return target
