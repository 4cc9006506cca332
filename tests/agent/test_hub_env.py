"""The agent's hub client takes the environment's proxy and CA settings, as requests would."""

from __future__ import annotations

from relay_agent.hub import HubClient

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


def test_a_ca_bundle_from_the_environment_is_used(monkeypatch, tmp_path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))

    assert HubClient("https://hub.example", "key").session.verify == str(bundle)
