"""Test servers for the agent's HTTP client: a self-signed certificate, a raw HTTP server and a CONNECT proxy."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """A certificate (its own CA) for these DNS names and IP addresses; the certificate and key files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1)).add_extension(x509.SubjectAlternativeName(alt), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def read_request(reader) -> bytes | None:  # noqa: ANN001 - a binary file
    """One request's head and body (by Content-Length) as sent; None at the end of the connection."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = reader.readline()
        if not line:
            return None
        head += line
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + reader.read(length)


# A raw request -> the raw bytes to answer with, or None to close the connection without answering, or
# (bytes, True) to answer and then close the connection without saying so.
Reply = Callable[[bytes], "bytes | tuple[bytes, bool] | None"]


@contextmanager
def raw_server(reply: Reply, tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, list[list[bytes]]]]:
    """An HTTP server on 127.0.0.1 that answers byte for byte; yields its port and each connection's requests."""
    connections: list[list[bytes]] = []

    def serve(conn: socket.socket) -> None:
        requests: list[bytes] = []
        connections.append(requests)
        try:
            if tls is not None:
                conn = tls.wrap_socket(conn, server_side=True)
            with conn, conn.makefile("rb") as reader:
                while (request := read_request(reader)) is not None:
                    requests.append(request)
                    answer = reply(request)
                    if answer is None:
                        return
                    conn.sendall(answer if isinstance(answer, bytes) else answer[0])
                    if not isinstance(answer, bytes):
                        return
        except OSError:
            pass

    with raw_proxy_listener(serve) as port:
        yield port, connections


@contextmanager
def connect_proxy(upstream_port: int) -> Iterator[tuple[str, list[bytes]]]:
    """A forward proxy that tunnels every CONNECT to 127.0.0.1:`upstream_port`; yields its URL and the heads."""
    heads: list[bytes] = []

    def reply_and_tunnel(client: socket.socket) -> None:
        with client, client.makefile("rb") as reader:
            head = read_request(reader)
            heads.append(head or b"")
            if not head or not head.startswith(b"CONNECT "):
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pump = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            pump.start()
            _pipe(client, upstream)
            pump.join(5)

    with raw_proxy_listener(reply_and_tunnel) as port:
        yield f"http://127.0.0.1:{port}", heads


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def raw_proxy_listener(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A listener on 127.0.0.1 that hands each connection to ``handle`` on a thread of its own; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
