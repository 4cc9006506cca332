"""Announcing several commands to a hub that takes only one per request."""

from __future__ import annotations

from relay_agent.hub import HubClient

from .stub_http import stub_server


def single_started(path: str, body: dict) -> tuple[int, dict]:
    """`started` as a hub without the list form answers it: 400 for {"commands": [...]}."""
    if "commandId" not in body:
        return 400, {"success": False, "error": "commandId: This field is required."}
    if body["commandId"] == "gone":
        return 404, {"success": False, "error": "command not found"}
    return 200, {"success": True, "cancelRequested": False}


def test_an_older_hub_gets_one_request_per_command() -> None:
    with stub_server(single_started) as (hub, received):
        accepted = HubClient(hub, "key").started_many([("1", 1), ("gone", 1), ("3", 2)])

    assert accepted == {"1": False, "3": False}
    assert [body.get("commandId", "list") for _, body in received] == ["list", "1", "gone", "3"]
