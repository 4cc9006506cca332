"""The HTTP proxy for the hub URL, from the environment, chosen as requests chose it.

requests read `<scheme>_proxy`, `all_proxy` and `no_proxy` (lower case first) through urllib's
`getproxies_environment` and `proxy_bypass_environment`, then its own `no_proxy` matching (IPv4 CIDR
ranges, host suffixes with and without the port) and `select_proxy`. The same rules are here, so that
importing them does not import urllib.request, http.client and ssl into every agent.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import struct
from urllib.parse import unquote, urlsplit

Proxy = tuple[str, int, "str | None"]  # host, port, Proxy-Authorization header value


def for_url(url: str) -> Proxy | None:
    """The proxy to reach `url` through, or None for a direct connection."""
    parts = urlsplit(url)
    host = parts.hostname
    if host is None or _bypass(host, parts.port):
        return None
    proxies = environment_proxies()
    for key in (f"{parts.scheme}://{host}", parts.scheme, f"all://{host}", "all"):
        if key in proxies:
            return parse(proxies[key])
    return None


def parse(proxy_url: str) -> Proxy:
    """An `http://[user:password@]host[:port]` proxy URL (no scheme means http); ValueError for others."""
    parts = urlsplit(proxy_url if "://" in proxy_url else f"http://{proxy_url}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"unsupported proxy {parts.scheme}://{parts.hostname or ''} (only http:// proxies)")
    auth = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode("latin-1")
        auth = "Basic " + base64.b64encode(credentials).decode("ascii")
    return parts.hostname, parts.port or 80, auth


def environment_proxies() -> dict[str, str]:
    """urllib.request.getproxies_environment: scheme -> proxy URL, lower-case variables winning."""
    proxies = {}
    for name, value in os.environ.items():
        name = name.lower()
        if value and name[-6:] == "_proxy":
            proxies[name[:-6]] = value
    if "REQUEST_METHOD" in os.environ:  # CVE-2016-1000110: a CGI script's HTTP_PROXY may come from a client
        proxies.pop("http", None)
    for name, value in os.environ.items():
        if name[-6:] == "_proxy":
            name = name.lower()
            if value:
                proxies[name[:-6]] = value
            else:
                proxies.pop(name[:-6], None)
    return proxies


def _bypass(hostname: str, port: int | None) -> bool:
    """requests.utils.should_bypass_proxies for a URL's host name and port."""
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
    if no_proxy:
        entries = [entry for entry in no_proxy.replace(" ", "").split(",") if entry]
        if _is_ipv4(hostname):
            for entry in entries:
                if _is_cidr(entry):
                    if _in_network(hostname, entry):
                        return True
                elif hostname == entry:
                    return True
        else:
            with_port = f"{hostname}:{port}" if port else hostname
            for entry in entries:
                entry = entry.lstrip(".")
                if entry in (hostname, with_port) or hostname.endswith("." + entry) or with_port.endswith("." + entry):
                    return True
    return _bypass_environment(hostname)


def _bypass_environment(host: str) -> bool:
    """urllib.request.proxy_bypass_environment."""
    no_proxy = environment_proxies().get("no")
    if no_proxy is None:
        return False
    if no_proxy == "*":
        return True
    host = host.lower()
    match = re.fullmatch("(.*):([0-9]*)", host, re.DOTALL)
    hostonly = match.group(1) if match else host
    for name in no_proxy.split(","):
        name = name.strip().lstrip(".").lower()
        if name and (name in (hostonly, host) or hostonly.endswith("." + name) or host.endswith("." + name)):
            return True
    return False


def _is_ipv4(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except OSError:
        return False
    return True


def _is_cidr(text: str) -> bool:
    if text.count("/") != 1:
        return False
    address, bits = text.split("/")
    try:
        mask = int(bits)
    except ValueError:
        return False
    return 1 <= mask <= 32 and _is_ipv4(address)


def _in_network(ip: str, network: str) -> bool:
    address, bits = network.split("/")
    netmask = struct.unpack("=L", struct.pack(">L", (0xFFFFFFFF << (32 - int(bits))) & 0xFFFFFFFF))[0]
    (ip_value,) = struct.unpack("=L", socket.inet_aton(ip))
    (net_value,) = struct.unpack("=L", socket.inet_aton(address))
    return (ip_value & netmask) == (net_value & netmask)
