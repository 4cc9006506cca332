"""The webhook SSRF guard: every forbidden address class refused, allowed by setting, at save and at send,
connecting only to the address it checked (no DNS rebinding), over TLS that still checks the host's name."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ValidationError

from notifications import delivering, guard, routing, senders
from notifications.events import Occurrence
from notifications.models import Channel, Delivery
from tests.webhook_receiver import WebhookReceiver

SECRET = "whsec-guard-0123456789abcdef"
FORBIDDEN = {
    "127.0.0.1": "loopback", "::1": "loopback", "10.1.2.3": "private", "172.16.0.1": "private",
    "192.168.1.1": "private", "169.254.169.254": "cloud metadata", "fe80::1": "link-local",
    "100.64.0.1": "shared (CGNAT)", "0.0.0.0": "unspecified",  # nosec B104 - an address refused
    "::ffff:127.0.0.1": "loopback (inside IPv6)",
    "localhost": "loopback", "fd00::1": "private", "224.0.0.1": "multicast", "::ffff:169.254.169.254": "metadata",
}


def allow(settings, *hosts: str) -> None:
    settings.RELAYHUB = {**settings.RELAYHUB, "NOTIFY_ALLOWED_HOSTS": list(hosts)}


def netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@pytest.mark.parametrize("host", FORBIDDEN)
def test_each_forbidden_address_class_is_refused_unless_allowed(host, settings):
    url = f"http://{netloc(host)}:8080/hook"
    allow(settings)
    with pytest.raises(guard.Refused) as refused:
        guard.check_url(url)
    assert FORBIDDEN[host] in str(refused.value) and "/hook" not in str(refused.value)

    channel = Channel(name="c", kind="webhook", url=url)
    channel.set_secret(SECRET)
    with pytest.raises(ValidationError) as invalid:
        channel.full_clean(validate_unique=False)
    assert "address" in invalid.value.message_dict["url"][0]

    allow(settings, f"{netloc(host)}:8080")
    assert guard.check_url(url).port == 8080
    channel.full_clean(validate_unique=False)
    allow(settings, netloc(host) if ":" not in host else host)  # the host alone allows any port
    assert guard.check_url(url).host == host
    allow(settings, f"{netloc(host)}:8081")  # another port does not
    with pytest.raises(guard.Refused):
        guard.check_url(url)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/",
                                 "http://user:pw@example.com/", "http:///nohost"])
def test_only_plain_http_and_https_urls(url):
    with pytest.raises(guard.Refused):
        guard.check_url(url)


def test_an_internationalised_name_is_resolved_and_sent_as_dns_spells_it(monkeypatch, settings):
    fake_dns(monkeypatch, {"xn--bcher-kva.example.test": ["127.0.0.1"]})
    allow(settings, "xn--bcher-kva.example.test")
    target = guard.check_url("http://Bücher.example.test:8080/x")
    assert (target.host_header, target.addresses) == ("xn--bcher-kva.example.test:8080", ("127.0.0.1",))


def test_a_public_address_is_allowed():
    assert guard.forbidden_reason(guard.ipaddress.ip_address("93.184.216.34")) is None
    assert guard.forbidden_reason(guard.ipaddress.ip_address("::ffff:93.184.216.34")) is None
    assert guard.forbidden_reason(guard.ipaddress.ip_address("2606:4700:4700::1111")) is None


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Resolve the names in ``answers`` to each address list in turn (the last one sticks); record each lookup."""
    real, asked = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            asked.append(host)
            addresses = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            family = socket.AF_INET6 if ":" in addresses else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (addresses, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def deliver_once(channel: Channel) -> Delivery:
    event_id, channel_id, _ = routing.test_delivery(channel, Occurrence("test", None, {"type": "test"}))
    delivering.attempt(event_id, channel_id, None, 1)
    return Delivery.objects.latest("pk")


@pytest.mark.django_db
def test_the_address_checked_is_the_address_connected_to(monkeypatch, settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "NOTIFY_TIMEOUT_S": 1}
    with WebhookReceiver() as receiver:
        # Allowed by name: it resolves to the receiver once; any later lookup would give an unreachable address.
        asked = fake_dns(monkeypatch, {"hooks.example.test": ["127.0.0.1", "203.0.113.9"]})
        allow(settings, f"hooks.example.test:{receiver.port}")
        channel = Channel.objects.create(name="pinned", kind="slack",
                                         url=f"http://hooks.example.test:{receiver.port}/x")
        asked.clear()
        assert deliver_once(channel).status == "succeeded"
        assert asked == ["hooks.example.test"]
        assert receiver.received[0].headers["host"] == f"hooks.example.test:{receiver.port}"

        # Rebinding: public when checked, loopback afterwards. The check's address is used, so nothing arrives.
        # (203.0.113.9, a documentation address that leads nowhere, stands for a public one here.)
        real_reason = guard.forbidden_reason
        monkeypatch.setattr(guard, "forbidden_reason", lambda ip: None if str(ip) == "203.0.113.9" else real_reason(ip))
        allow(settings)
        fake_dns(monkeypatch, {"rebind.example.test": ["203.0.113.9", "127.0.0.1"]})
        Channel.objects.filter(pk=channel.pk).update(url=f"http://rebind.example.test:{receiver.port}/x")
        delivery = deliver_once(Channel.objects.get(pk=channel.pk))
        assert delivery.status == "retrying" and "rebind.example.test" in delivery.error
        assert len(receiver.received) == 1


@pytest.mark.django_db
def test_the_guard_is_asked_again_at_send_time_and_redirects_are_not_followed(settings):
    with WebhookReceiver() as receiver:
        allow(settings, receiver.host)
        channel = Channel(name="hook", kind="webhook", url=receiver.url)
        channel.set_secret(SECRET)
        channel.full_clean()
        channel.save()
        receiver.statuses, receiver.redirect_to = [302], "http://127.0.0.1:1/elsewhere"
        delivery = deliver_once(channel)
        assert (delivery.status, delivery.http_status) == ("retrying", 302) and len(receiver.received) == 1

        allow(settings)  # the allowance is withdrawn after the channel was saved
        delivery = deliver_once(channel)
        assert delivery.status == "refused" and "loopback" in delivery.error
        assert len(receiver.received) == 1


def _certificate(tmp_path, name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.mark.django_db
def test_https_is_pinned_too_and_still_checks_the_name(tmp_path, monkeypatch, settings):
    cert_file, key_file = _certificate(tmp_path, "hooks.example.test")
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        monkeypatch.setattr(senders, "CA_BUNDLE", str(cert_file))
        fake_dns(monkeypatch, {"hooks.example.test": ["127.0.0.1"], "wrong.example.test": ["127.0.0.1"]})
        allow(settings, "hooks.example.test", "wrong.example.test")
        channel = Channel.objects.create(name="tls", kind="slack", url=f"https://hooks.example.test:{port}/x")
        assert (deliver_once(channel).http_status, seen) == (204, [f"hooks.example.test:{port}"])

        Channel.objects.filter(pk=channel.pk).update(url=f"https://wrong.example.test:{port}/x")
        delivery = deliver_once(Channel.objects.get(pk=channel.pk))
        assert delivery.status == "retrying" and "TLS" in delivery.error and len(seen) == 1
    finally:
        server.shutdown()
        server.server_close()
