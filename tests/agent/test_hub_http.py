"""The agent's own HTTP client (hub_http) on real sockets: what the hub, a TLS front or a proxy may answer.

It replaced requests; the first test holds it to sending what requests sent.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
import zlib

import pytest
import requests
from relay_agent import __version__
from relay_agent.hub import HubClient, HubRequestError, HubUnavailable

from .tls_support import connect_proxy, raw_server, self_signed, server_context

BEAT = json.dumps({"success": True, "cancelCommandIds": ["c1"]}).encode()


def answer(body: bytes = BEAT, status: str = "200 OK", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
            ).encode() + body


def parsed(request: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    return line, {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}, body


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_it_sends_what_requests_sent() -> None:
    """The wire format is unchanged: the same request line, headers and body as the requests-based client."""
    with raw_server(lambda request: answer()) as (port, connections):
        url = f"http://127.0.0.1:{port}"
        session = requests.Session()
        session.headers.update({"X-API-Key": "k", "User-Agent": f"relay-agent/{__version__}",
                                "Accept": "application/json"})
        session.post(url + "/relay/commands/output", json={"commandId": "7", "attempt": None, "chunks": [{"data": "é"}]},
                     timeout=5).raise_for_status()
        session.get(url + "/relay/config-pushes", params={"relayId": "r 1"}, timeout=5).raise_for_status()
        session.post(url + "/relay/heartbeat", json={}, timeout=5).raise_for_status()
        client = HubClient(url, "k")
        client.output("7", None, [{"data": "é"}])
        client.config_pushes("r 1")
        client.heartbeat()

    sent = [parsed(r) for conn in connections for r in conn]
    by_requests, by_agent = sent[:3], sent[3:]
    assert by_agent == by_requests
    assert by_agent[0][1]["content-type"] == "application/json" and by_agent[1][0].endswith("?relayId=r+1 HTTP/1.1")


def test_one_connection_is_kept_alive_and_one_the_hub_closed_is_replaced() -> None:
    closing = answer(headers="Connection: close\r\n")
    replies = iter([answer(), answer(), closing, answer()])
    with raw_server(lambda request: next(replies)) as (port, connections):
        client = HubClient(f"http://127.0.0.1:{port}", "k")
        for _ in range(4):
            assert client.heartbeat() == ["c1"]

    assert [len(requests) for requests in connections] == [3, 1]


def test_an_idle_connection_the_hub_dropped_is_not_used() -> None:
    """The hub ends a kept-alive connection unannounced (uvicorn's keep-alive timeout): the next request goes on a new one."""
    with raw_server(lambda request: (answer(), True)) as (port, connections):
        client = HubClient(f"http://127.0.0.1:{port}", "k")
        for _ in range(3):
            assert client.heartbeat() == ["c1"]
            time.sleep(0.2)

    assert [len(requests) for requests in connections] == [1, 1, 1]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "chunked"])
def test_compressed_and_chunked_answers_are_decoded(encoding: str) -> None:
    if encoding == "chunked":
        raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(part), part) for part in (BEAT[:5], BEAT[5:])) + b"0\r\n\r\n")
    else:
        body = gzip.compress(BEAT) if encoding == "gzip" else zlib.compress(BEAT)
        raw = answer(body, headers=f"Content-Encoding: {encoding}\r\n")
    with raw_server(lambda request: raw) as (port, connections):
        client = HubClient(f"http://127.0.0.1:{port}", "k")
        assert client.heartbeat() == ["c1"]
        assert client.heartbeat() == ["c1"], "the connection is still usable after the body"

    assert len(connections) == 1


def test_a_hub_that_does_not_answer_in_time_is_unavailable() -> None:
    with raw_server(lambda request: time.sleep(2) or answer()) as (port, _):
        started = time.monotonic()
        with pytest.raises(HubUnavailable, match="ReadTimeout"):
            HubClient(f"http://127.0.0.1:{port}", "k", read_timeout=0.3).heartbeat()

    assert time.monotonic() - started < 1.5


def test_a_redirect_is_not_followed_with_the_key() -> None:
    with raw_server(lambda request: answer()) as (elsewhere, followed):
        moved = answer(b"", "307 Temporary Redirect", f"Location: http://127.0.0.1:{elsewhere}/relay/heartbeat\r\n")
        with raw_server(lambda request: moved) as (port, _):
            with pytest.raises(HubRequestError) as exc:
                HubClient(f"http://127.0.0.1:{port}", "k").heartbeat()

    assert exc.value.status == 307
    assert followed == []


def test_a_download_stops_at_its_limit() -> None:
    wheel = b"PK" + b"x" * 5000
    with raw_server(lambda request: answer(wheel)) as (port, _):
        client = HubClient(f"http://127.0.0.1:{port}", "k")
        assert client.download("/relay/agent-releases/1/wheel", 5002) == wheel
        with pytest.raises(HubRequestError, match="more than 5001 bytes"):
            client.download("/relay/agent-releases/1/wheel", 5001)


def test_user_and_password_in_the_hub_url_are_sent_as_basic_auth() -> None:
    with raw_server(lambda request: answer()) as (port, connections):
        HubClient(f"http://relay:p%40ss@127.0.0.1:{port}", "k").heartbeat()

    _, headers, _ = parsed(connections[0][0])
    assert headers["authorization"] == "Basic " + base64.b64encode(b"relay:p@ss").decode()
    assert headers["host"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_an_https_hub_is_verified_against_the_ca_bundle_from_the_environment(monkeypatch, tmp_path, variable):
    cert, key = self_signed(tmp_path, ["127.0.0.1"])
    with raw_server(lambda request: answer(), tls=server_context(cert, key)) as (port, connections):
        with pytest.raises(HubUnavailable, match="SSLError"):  # the control: not trusted without the bundle
            HubClient(f"https://127.0.0.1:{port}", "k").heartbeat()
        monkeypatch.setenv(variable, str(cert))
        client = HubClient(f"https://127.0.0.1:{port}", "k")

        assert [client.heartbeat(), client.heartbeat()] == [["c1"], ["c1"]]

    assert [len(requests) for requests in connections] == [0, 2], "one TLS connection, kept alive"


def test_a_certificate_for_another_name_is_refused(monkeypatch, tmp_path) -> None:
    cert, key = self_signed(tmp_path, ["hub.example"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with raw_server(lambda request: answer(), tls=server_context(cert, key)) as (port, connections):
        with pytest.raises(HubUnavailable, match="SSLError"):
            HubClient(f"https://127.0.0.1:{port}", "k").heartbeat()

    assert all(requests == [] for requests in connections), "the key never left over an unverified connection"


def test_an_https_hub_is_reached_through_the_proxy_with_connect(monkeypatch, tmp_path) -> None:
    cert, key = self_signed(tmp_path, ["hub.internal"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with raw_server(lambda request: answer(), tls=server_context(cert, key)) as (port, connections):
        with connect_proxy(port) as (proxy, heads):
            monkeypatch.setenv("HTTPS_PROXY", proxy.replace("http://", "http://me:secret@"))

            assert HubClient(f"https://hub.internal:{port}", "k").heartbeat() == ["c1"]

    line, headers, _ = parsed(heads[0])
    assert line == f"CONNECT hub.internal:{port} HTTP/1.1"
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"me:secret").decode()
    assert "x-api-key" not in headers, "the proxy sees the tunnel only"
    assert parsed(connections[0][0])[0] == "POST /relay/heartbeat HTTP/1.1"


def test_a_body_that_is_not_json_fails_the_request_as_it_did() -> None:
    with raw_server(lambda request: answer()) as (port, connections):
        with pytest.raises(HubUnavailable, match="InvalidJSONError"):
            HubClient(f"http://127.0.0.1:{port}", "k").report_status({"metrics": {"cpuPercent": float("nan")}})

    assert connections == []
