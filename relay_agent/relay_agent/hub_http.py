"""A small HTTP/1.1 client for talking to one hub: what the agent used `requests` for, in a fraction of the memory.

`requests` (with urllib3, charset_normalizer, idna, certifi, http.client, email and ssl) made up about half of
an idle agent's RSS. This client keeps what the agent relied on:

- keep-alive connections to the hub, reused across threads (at most `pool_size` kept idle; one found closed
  by the hub is dropped before it is used, as urllib3 does);
- a connect timeout (also for sending) and a read timeout per socket operation, as urllib3 applies them;
- TLS with certificate and host name verification against the system's CAs or a given CA bundle (file or
  directory); `ssl` and OpenSSL are loaded on the first https connection only;
- an HTTP proxy from the environment (`http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`, read once):
  absolute-form requests for an http hub, a CONNECT tunnel for an https one;
- `user:password@` in the hub URL sent as basic auth; gzip and deflate answers decoded.

No redirect is ever followed: the key goes only to the server the hub URL names. Transport failures raise
`TransportError`, whose `kind` is the name requests gave the same failure (`ConnectionError`, `ConnectTimeout`,
`ReadTimeout`, `SSLError`, `ProxyError`, `InvalidURL`), so log lines read as before.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import threading
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from . import env_proxy

MAX_LINE = 65536
MAX_HEADERS = 100
CHUNK = 65536


class TransportError(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class BodyTooLarge(Exception):
    pass


class Response:
    def __init__(self, status: int, reason: str, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status
        self.reason = reason
        self.headers = headers  # lower-cased names
        self.content = content


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def dropped(self) -> bool:
        """Closed by the server (or holding bytes nobody asked for) while it sat in the pool."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class HTTPClient:
    def __init__(self, base_url: str, headers: dict[str, str], connect_timeout: float, pool_size: int,
                 ca_bundle: str | None) -> None:
        self.headers = dict(headers)
        self.connect_timeout = connect_timeout
        self.pool_size = pool_size
        self.ca_bundle = ca_bundle
        self.proxy: env_proxy.Proxy | None = None
        # A URL or proxy that cannot be used fails each request, as it did with requests, not the start-up.
        self._unusable = ""
        try:
            self._parse(base_url)
            self.proxy = env_proxy.for_url(base_url)
        except (ValueError, UnicodeError) as exc:
            self._unusable = str(exc)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._tls: Any = None

    def _parse(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.scheme, self.prefix = parts.scheme, parts.path.rstrip("/")
        self.host = self.host_header = self.bracketed = self.origin = ""
        self.port = 0
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL with a host: {base_url}")
        self.host = _ascii_host(parts.hostname)
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        default_port = self.port == (443 if self.scheme == "https" else 80)
        self.bracketed = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = self.bracketed if default_port else f"{self.bracketed}:{self.port}"
        self.origin = f"{self.scheme}://{self.host_header}"
        if parts.username is not None or parts.password is not None:
            self.headers["Authorization"] = _basic_auth(unquote(parts.username or ""), unquote(parts.password or ""))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                headers: dict[str, str | None] | None = None, read_timeout: float,
                max_body: int | None = None) -> Response:
        """One request; the whole (decoded) answer. `body`: bytes or a binary file (sent from where it is)."""
        target = quote(self.prefix + path, safe="/%:@!$&'()*+,;=-._~")
        query = urlencode([(k, v) for k, v in (params or {}).items() if v is not None])
        if query:
            target += "?" + query
        if self.proxy and self.scheme == "http":
            target = self.origin + target
        merged = {**self.headers, **(headers or {})}
        head = [f"{method} {target} HTTP/1.1", f"Host: {self.host_header}"]
        head += [f"{name}: {value}" for name, value in merged.items() if value is not None]
        if self.proxy and self.scheme == "http" and self.proxy[2]:
            head.append(f"Proxy-Authorization: {self.proxy[2]}")
        length = _length(body)
        if length is not None or method not in ("GET", "HEAD", "OPTIONS"):
            head.append(f"Content-Length: {length or 0}")
        if any("\r" in line or "\n" in line for line in head):  # requests refused these too (InvalidHeader)
            raise TransportError("InvalidHeader", "a line break in the request line or a header value")
        try:
            payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise TransportError("InvalidHeader", "a header value that is not latin-1") from None
        conn = self._acquire()
        try:
            try:  # urllib3's timeouts: the connect one for sending, the read one for each read of the answer
                conn.sock.settimeout(self.connect_timeout)
                _send(conn.sock, payload, body)
                conn.sock.settimeout(read_timeout)
            except OSError as exc:
                raise TransportError(_kind(exc), str(exc)) from None
            response, reusable = _read_response(conn.reader, method, max_body)
        except BaseException:
            conn.close()
            raise
        self._release(conn, reusable)
        return response

    def _acquire(self) -> _Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if not conn.dropped():
                return conn
            conn.close()

    def _release(self, conn: _Connection, reusable: bool) -> None:
        with self._lock:
            if reusable and not self._closed and len(self._idle) < self.pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self) -> _Connection:
        if self._unusable:
            raise TransportError("InvalidURL", self._unusable)
        address = self.proxy[:2] if self.proxy else (self.host, self.port)
        try:
            # The name as bytes: a str makes getaddrinfo encode it with the idna codec, which imports
            # stringprep and unicodedata (most of a megabyte) even for an ASCII name.
            name = _ascii_host(address[0]).encode("ascii")
            sock = socket.create_connection((name, address[1]), timeout=self.connect_timeout)
        except TimeoutError:
            raise TransportError("ConnectTimeout", f"connecting to {address[0]}:{address[1]}") from None
        except OSError as exc:
            raise TransportError("ProxyError" if self.proxy else "ConnectionError", str(exc)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                if self.proxy:
                    self._tunnel(sock)
                sock = self._tls_context().wrap_socket(sock, server_hostname=self.host)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, TimeoutError):
                raise TransportError("ConnectTimeout", f"TLS handshake with {self.host}") from None
            if isinstance(exc, OSError):
                raise TransportError(_kind(exc), str(exc)) from None
            raise
        return _Connection(sock)

    def _tunnel(self, sock: socket.socket) -> None:
        authority = f"{self.bracketed}:{self.port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if self.proxy[2]:
            lines.append(f"Proxy-Authorization: {self.proxy[2]}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        # Nothing follows the proxy's answer until the TLS handshake starts: the buffer cannot take any of it.
        with sock.makefile("rb") as reader:
            status, reason, _ = _read_head(reader)
        if status != 200:
            raise TransportError("ProxyError", f"proxy answered CONNECT with {status} {reason}")

    def _tls_context(self) -> Any:
        if self._tls is None:
            import ssl  # only a hub reached over https pays for OpenSSL

            bundle = self.ca_bundle
            if bundle and os.path.isdir(bundle):
                context = ssl.create_default_context(capath=bundle)
            else:
                context = ssl.create_default_context(cafile=bundle or None)
            with self._lock:
                self._tls = self._tls or context
        return self._tls


def _kind(exc: OSError) -> str:
    return "SSLError" if type(exc).__name__.startswith("SSL") else "ConnectionError"


def _ascii_host(host: str) -> str:
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        return host.encode("idna").decode("ascii")
    return host


def _basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode("latin-1")).decode("ascii")


def _length(body: Any) -> int | None:
    if body is None:
        return None
    if isinstance(body, bytes | bytearray):
        return len(body)
    here = body.tell()
    end = body.seek(0, os.SEEK_END)
    body.seek(here)
    return end - here


def _send(sock: socket.socket, head: bytes, body: Any) -> None:
    if body is None or isinstance(body, bytes | bytearray):
        sock.sendall(head + bytes(body or b""))
        return
    sock.sendall(head)
    while chunk := body.read(CHUNK):
        sock.sendall(chunk)


def _read_line(reader: Any) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise TransportError("ConnectionError", "header line too long")
    if not line:
        raise TransportError("ConnectionError", "connection closed by the server")
    return line


def _read_head(reader: Any) -> tuple[int, str, dict[str, str]]:
    """Status line and headers (names lower-cased; repeated ones joined with ", ")."""
    version, _, rest = _read_line(reader).decode("latin-1").rstrip("\r\n").partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
        raise TransportError("ConnectionError", f"bad status line {version} {rest}"[:200])
    headers: dict[str, str] = {}
    name = ""
    for _ in range(MAX_HEADERS + 1):
        line = _read_line(reader).decode("latin-1").rstrip("\r\n")
        if not line:
            headers[":version"] = version
            return int(code), reason.strip(), headers
        if line[0] in " \t" and name:  # an obsolete folded continuation
            headers[name] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
    raise TransportError("ConnectionError", f"more than {MAX_HEADERS} headers")


def _read_response(reader: Any, method: str, max_body: int | None) -> tuple[Response, bool]:
    """The response and whether its connection can carry another request."""
    try:
        status, reason, headers = _read_head(reader)
        while 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints) precede the real one
            status, reason, headers = _read_head(reader)
        version = headers.pop(":version")
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        reusable = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
        chunks: Iterator[bytes]
        if method == "HEAD" or status in (204, 304):
            chunks = iter(())
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = _chunked(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"].split(",")[0])
            except ValueError:
                raise TransportError("ConnectionError", "bad Content-Length") from None
            chunks = _sized(reader, length)
        else:
            chunks, reusable = _until_close(reader), False
        content = b"".join(_limited(_decoded(chunks, headers.get("content-encoding", "")), max_body))
    except TimeoutError:
        raise TransportError("ReadTimeout", "no answer within the read timeout") from None
    except OSError as exc:
        raise TransportError(_kind(exc), str(exc)) from None
    return Response(status, reason, headers, content), reusable


def _sized(reader: Any, length: int) -> Iterator[bytes]:
    while length > 0:
        chunk = reader.read(min(length, CHUNK))
        if not chunk:
            raise TransportError("ConnectionError", "connection closed before the end of the body")
        length -= len(chunk)
        yield chunk


def _chunked(reader: Any) -> Iterator[bytes]:
    while True:
        size_text = _read_line(reader).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise TransportError("ConnectionError", "bad chunk size") from None
        if size == 0:
            while _read_line(reader) not in (b"\r\n", b"\n"):  # trailers
                pass
            return
        yield from _sized(reader, size)
        _read_line(reader)


def _until_close(reader: Any) -> Iterator[bytes]:
    while chunk := reader.read1(CHUNK):
        yield chunk


def _decoded(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    encoding = encoding.strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        yield from chunks
        return
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    first = True
    try:
        for chunk in chunks:
            if first and encoding == "deflate" and chunk and chunk[0] & 0x0F != 8:
                decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send it
            first = False
            yield decoder.decompress(chunk)
        yield decoder.flush()
    except zlib.error as exc:
        raise TransportError("ContentDecodingError", str(exc)) from None


def _limited(chunks: Iterator[bytes], max_body: int | None) -> Iterator[bytes]:
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if max_body is not None and size > max_body:
            raise BodyTooLarge(max_body)
        yield chunk
