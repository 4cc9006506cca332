"""The agent's hub client takes the environment's proxy settings, as requests did."""

from __future__ import annotations

import os

import pytest
import requests
from relay_agent import env_proxy
from relay_agent.hub import HubClient, HubUnavailable

from .stub_http import stub_server


def beat(path: str, body: dict) -> tuple[int, dict]:
    # A forward proxy answers with what it fetched; this one answers for the hub itself.
    return 200, {"success": True, "cancelCommandIds": []}


def test_requests_go_through_the_proxy_from_the_environment(monkeypatch) -> None:
    with stub_server(beat) as (proxy, received):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)

        assert HubClient("http://hub.internal:8000", "key").heartbeat() == []

    assert [path for path, _ in received] == ["http://hub.internal:8000/relay/heartbeat"]


def test_no_proxy_is_honoured(monkeypatch) -> None:
    with stub_server(beat) as (hub, received):
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")

        assert HubClient(hub, "key").heartbeat() == []

    assert [path for path, _ in received] == ["/relay/heartbeat"]


# The CA bundle from the environment (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE): test_hub_http, against a TLS server.


PROXY_CASES = [
    ({"HTTP_PROXY": "http://proxy:3128"}, "http://hub.internal:8000"),
    ({"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:2"}, "http://hub.internal"),
    ({"HTTPS_PROXY": "proxy.corp:8080"}, "https://hub.example.com"),
    ({"HTTPS_PROXY": "http://proxy:8080"}, "http://hub.example.com"),
    ({"ALL_PROXY": "http://all:1"}, "https://hub.example.com"),
    ({"all_proxy": "http://all:1", "https_proxy": "http://tls:2"}, "https://hub.example.com"),
    ({"HTTPS_PROXY": "http://u:p%40@proxy:8080"}, "https://hub.example.com"),
    ({"HTTP_PROXY": "http://proxy:1", "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3:8000"),
    ({"HTTP_PROXY": "http://proxy:1", "NO_PROXY": "10.0.0.0/8"}, "http://11.1.2.3:8000"),
    ({"HTTP_PROXY": "http://proxy:1", "no_proxy": "10.1.2.3"}, "http://10.1.2.3"),
    ({"HTTP_PROXY": "http://proxy:1", "no_proxy": ".internal"}, "http://hub.internal"),
    ({"HTTP_PROXY": "http://proxy:1", "no_proxy": "internal"}, "http://hub.internal"),
    ({"HTTP_PROXY": "http://proxy:1", "no_proxy": "ternal"}, "http://hub.internal"),
    ({"HTTP_PROXY": "http://proxy:1", "no_proxy": "hub.internal:8000"}, "http://hub.internal:8000"),
    ({"HTTP_PROXY": "http://proxy:1", "no_proxy": "hub.internal:9000"}, "http://hub.internal:8000"),
    ({"HTTP_PROXY": "http://proxy:1", "no_proxy": "*"}, "http://hub.internal"),
    ({"HTTP_PROXY": "http://proxy:1", "no_proxy": " a.example , HUB.internal"}, "http://hub.internal"),
    ({"HTTP_PROXY": "http://proxy:1", "REQUEST_METHOD": "GET"}, "http://hub.internal"),
    ({"http_proxy": "http://proxy:1", "REQUEST_METHOD": "GET"}, "http://hub.internal"),
    ({"HTTP_PROXY": "http://proxy:1"}, "http://[::1]:8000"),
]


@pytest.mark.parametrize(("env", "url"), PROXY_CASES)
def test_the_proxy_is_the_one_requests_chose(monkeypatch, env: dict[str, str], url: str) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    chosen = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))

    assert env_proxy.for_url(url) == (env_proxy.parse(chosen) if chosen else None)


def test_a_proxy_other_than_http_fails_each_request_as_with_requests(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    with pytest.raises(HubUnavailable, match="InvalidURL"):
        HubClient("https://hub.example", "key").heartbeat()
