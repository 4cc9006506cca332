"""A real Agent, in this process, against the in-memory hub of fakehub.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

from relay_agent import transport
from relay_agent.spool import ResultSpool

from .conftest import stop_agent
from .fakehub import FakeHub


def push(hub: FakeHub, push_type: str, payload: dict | str) -> str:
    push_id = f"push{len(hub.config_pushes) + 1}"
    hub.config_pushes.append(
        {"_id": push_id, "pushType": push_type, "payload": payload if isinstance(payload, str) else json.dumps(payload), "createdAt": 1, "status": "pending"}
    )
    return push_id


def test_startup_verifies_reports_status_and_syncs(hub: FakeHub, make_agent) -> None:
    push(hub, "metrics_interval", {"intervalMs": 45000})
    hub.shared_credentials.append(
        {"name": "shared-db", "credentialType": "password", "targetHost": "db1", "encryptedValue": transport.encrypt("pw-value", "tsecret"), "updatedAt": 1}
    )

    agent = make_agent(hub, shared_secret="tsecret")

    assert agent.relay_id == hub.relay_id
    first = hub.status_reports[0]
    assert first["relayId"] == hub.relay_id
    assert first["capabilities"] == ["local_cmd", "ssh", "perf_metrics"]
    assert set(first["metrics"]) == {
        "cpuPercent", "memoryPercent", "memoryUsedMb", "memoryTotalMb", "diskPercent",
        "diskUsedGb", "diskTotalGb", "loadAvg1m", "loadAvg5m", "loadAvg15m",
    }
    assert first["version"] == "0.1.0" and first["hostname"] and first["platform"]
    assert hub.acks == [{"pushId": "push1", "success": True}]
    assert agent.config.metrics_interval_ms == 45000
    assert agent.store.get("shared-db").value == "pw-value"
    # The new shared credential is reported right away, as metadata only.
    assert hub.status_reports[-1]["credentials"] == [
        {"credentialName": "shared-db", "credentialType": "password", "targetHost": "db1", "storageMode": "shared", "lastUpdatedAt": agent.store.get("shared-db").last_updated_at}
    ]


def test_a_command_runs_through_long_poll(hub: FakeHub, make_agent) -> None:
    make_agent(hub)
    command_id = hub.queue("echo hello; echo warn >&2")

    result = hub.wait_result(command_id)

    assert result == {
        "commandId": command_id,
        "success": True,
        "output": "hello\n",
        "stderr": "warn\n",
        "exitCode": 0,
        "durationMs": result["durationMs"],
        "attempt": 1,
    }
    assert "POST /relay/commands/next" in hub.requests
    assert "POST /relay/commands/started" in hub.requests
    assert "GET /relay/commands" not in hub.requests


def test_output_is_streamed_in_order_before_the_result(hub: FakeHub, make_agent) -> None:
    make_agent(hub)
    command_id = hub.queue("echo one; sleep 0.5; echo two; echo err >&2")

    assert hub.wait_for(lambda: any(c["commandId"] == command_id for c in hub.chunks))
    assert command_id not in hub.results, "the first chunk should arrive while the command still runs"
    result = hub.wait_result(command_id)

    stdout = [c for c in hub.chunks if c["commandId"] == command_id and c["stream"] == "stdout"]
    assert "".join(c["data"] for c in stdout) == result["output"] == "one\ntwo\n"
    assert [c["offset"] for c in stdout] == [0, 4][: len(stdout)] or stdout[0]["offset"] == 0
    assert "".join(c["data"] for c in hub.chunks if c["commandId"] == command_id and c["stream"] == "stderr") == "err\n"


def test_an_old_hub_is_polled(hub: FakeHub, make_agent) -> None:
    hub.extensions = False
    make_agent(hub)
    command_id = hub.queue("exit 2")

    result = hub.wait_result(command_id)

    assert result["success"] is False and result["exitCode"] == 2
    assert not {"attempt", "status", "outputTruncated"} & set(result), "an original hub gets only its own fields"
    assert "GET /relay/commands" in hub.requests
    assert "POST /relay/commands/claim" in hub.requests
    assert "POST /relay/commands/result" in hub.requests


def test_commands_run_in_parallel_up_to_the_concurrency(hub: FakeHub, make_agent) -> None:
    make_agent(hub, concurrency=3)
    started = time.monotonic()
    ids = [hub.queue("sleep 0.6") for _ in range(3)]

    for command_id in ids:
        assert hub.wait_result(command_id)["success"]
    assert time.monotonic() - started < 1.6


def test_a_timeout_is_reported_as_such(hub: FakeHub, make_agent) -> None:
    make_agent(hub)
    command_id = hub.queue("sleep 10", timeout_ms=300)

    result = hub.wait_result(command_id)

    assert result["status"] == "timeout"
    assert result["success"] is False
    assert result["error"] == "execution timed out after 300 ms"


def test_a_cancel_from_the_heartbeat_kills_a_silent_command(hub: FakeHub, make_agent) -> None:
    make_agent(hub)
    command_id = hub.queue("sleep 20")
    assert hub.wait_for(lambda: hub.commands[command_id]["status"] == "executing")

    hub.cancel_ids.add(command_id)
    result = hub.wait_result(command_id, timeout=5)

    assert result["status"] == "cancelled"
    assert result["durationMs"] < 5000


def test_a_cancel_from_the_output_answer_kills_the_command(hub: FakeHub, make_agent) -> None:
    make_agent(hub, heartbeat_interval_ms=60_000, busy_heartbeat_ms=60_000)
    command_id = hub.queue("while true; do echo tick; sleep 0.1; done")
    assert hub.wait_for(lambda: any(c["commandId"] == command_id for c in hub.chunks))

    hub.cancel_ids.add(command_id)

    assert hub.wait_result(command_id, timeout=5)["status"] == "cancelled"
    assert "POST /relay/heartbeat" not in hub.requests


def test_allowed_commands_are_enforced(hub: FakeHub, make_agent, tmp_path: Path) -> None:
    push(hub, "allowed_commands", {"commands": ["echo *"]})
    make_agent(hub)
    marker = tmp_path / "ran"

    refused = hub.wait_result(hub.queue(f"touch {marker}"))
    allowed = hub.wait_result(hub.queue("echo fine"))

    assert refused["success"] is False
    assert refused["error"] == "command not allowed by allowed_commands policy"
    assert not marker.exists()
    assert allowed["output"] == "fine\n"


def test_ssh_targets_are_enforced(hub: FakeHub, make_agent) -> None:
    push(hub, "ssh_targets", {"targets": ["10.9.9.9:22"]})
    make_agent(hub)

    result = hub.wait_result(hub.queue("true", target_type="ssh", targetHost="127.0.0.1", targetPort=22, targetUsername="root"))

    assert result["error"] == "ssh target 127.0.0.1:22 not allowed by ssh_targets policy"


def test_an_invalid_push_is_acked_as_failed(hub: FakeHub, make_agent) -> None:
    push(hub, "allowed_commands", "{broken")
    push(hub, "metrics_interval", {"intervalMs": 5})

    make_agent(hub)

    assert [a["success"] for a in hub.acks] == [False, False]
    assert "not valid JSON" in hub.acks[0]["errorMessage"]
    assert "between" in hub.acks[1]["errorMessage"]


def test_results_are_retried_until_the_hub_takes_them(hub: FakeHub, make_agent) -> None:
    hub.unavailable_results = 3
    agent = make_agent(hub)
    command_id = hub.queue("echo durable")

    result = hub.wait_result(command_id, timeout=15)

    assert result["output"] == "durable\n"
    assert len([p for p in hub.result_posts if p["commandId"] == command_id]) == 4
    assert hub.wait_for(lambda: agent.spool.count() == 0)


def test_spooled_results_survive_a_restart(hub: FakeHub, make_agent, store_dir: Path) -> None:
    hub.unavailable_results = 1000
    agent = make_agent(hub, shutdown_grace=1)
    command_id = hub.queue("echo kept")
    assert hub.wait_for(lambda: len(hub.result_posts) >= 1)
    stop_agent(agent)
    assert ResultSpool(store_dir).count() == 1
    assert command_id not in hub.results

    hub.unavailable_results = 0
    make_agent(hub)

    assert hub.wait_result(command_id)["output"] == "kept\n"


def test_a_result_the_hub_will_never_take_is_dropped(hub: FakeHub, make_agent) -> None:
    agent = make_agent(hub)
    command_id = hub.queue("sleep 0.3")
    assert hub.wait_for(lambda: hub.commands[command_id]["status"] == "executing")
    hub.commands[command_id]["attempt"] += 1  # the hub gave the command to a newer attempt meanwhile

    assert hub.wait_for(lambda: any(p["commandId"] == command_id for p in hub.result_posts))
    assert hub.wait_for(lambda: agent.spool.count() == 0)
    time.sleep(0.3)
    assert len([p for p in hub.result_posts if p["commandId"] == command_id]) == 1
    assert command_id not in hub.results


def test_shutdown_kills_what_outlives_the_grace(hub: FakeHub, make_agent) -> None:
    agent = make_agent(hub, shutdown_grace=0.5)
    slow = hub.queue("sleep 20")
    assert hub.wait_for(lambda: hub.commands[slow]["status"] == "executing")
    started = time.monotonic()

    stop_agent(agent)

    assert time.monotonic() - started < 5
    result = hub.results[slow]
    assert (result["success"], result["error"]) == (False, "agent shutting down")
    assert "status" not in result


def test_shutdown_lets_running_commands_finish(hub: FakeHub, make_agent) -> None:
    agent = make_agent(hub, shutdown_grace=10)
    command_id = hub.queue("sleep 0.5; echo finished")
    assert hub.wait_for(lambda: hub.commands[command_id]["status"] == "executing")

    stop_agent(agent)

    assert hub.results[command_id]["output"] == "finished\n"
