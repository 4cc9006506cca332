"""Batches over SSH targets with the real hub, a real relay-agent and real OpenSSH servers (no mocks).

Twenty-four SSH targets sit on the ports of three sshd processes behind one relay; a
label selector picks twenty of them. Each sshd has its own host key, pinned through the
targets' host_keys, and the relay logs in with one shared key bound to 127.0.0.1.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from assignments.models import RelayAssignment
from commands.models import Command
from tests.agent.sshd import SSHDUnavailable
from tests.e2e.fleet_support import (Api, MultiPortSSHD, all_acked, current_user, keygen, operator_api,
                                     run_multiport_sshd, share_ssh_key)
from tests.e2e.processes import wait_for

SELECTOR = "env=prod,role in (web,api),!canary"
PORTS_PER_SSHD = 8
FAST = ("--long-poll-wait", "500", "--concurrency", "8")


@pytest.fixture
def client_key(tmp_path: Path) -> tuple[str, str]:
    """(private key text, public key line) the relay logs in to every sshd with."""
    public = keygen(tmp_path / "client_ed25519")
    return (tmp_path / "client_ed25519").read_text(), public


@pytest.fixture
def sshds(tmp_path: Path, client_key) -> Iterator[list[MultiPortSSHD]]:
    try:
        with ExitStack() as stack:
            yield [stack.enter_context(run_multiport_sshd(tmp_path / f"sshd-{n}", PORTS_PER_SSHD, client_key[1]))
                   for n in range(3)]
    except SSHDUnavailable as exc:
        pytest.skip(f"no sshd: {exc}")


@pytest.fixture
def api(hub) -> Api:
    return operator_api(hub.url)


def labels_for(n: int) -> dict[str, str]:
    """Targets 0-19 match SELECTOR; 20-23 each miss it in one way."""
    misses = {20: {"env": "staging", "role": "web"}, 21: {"env": "prod", "role": "db"},
              22: {"env": "prod", "role": "web", "canary": "true"}, 23: {"env": "prod", "role": "api", "canary": ""}}
    return misses.get(n, {"env": "prod", "role": ("web", "api")[n % 2], "tier": f"t{n % 3}"})


def create_fleet(api: Api, relay: RelayAssignment, sshds: list[MultiPortSSHD],
                 username=lambda n: current_user()) -> list[dict]:
    """24 targets over the sshds' ports, each pinned to its sshd's host key, named so that the API orders them."""
    ports = [(server, port) for server in sshds for port in server.ports]
    assert len(ports) == 24
    return [api.create_target(name=f"node-{n:02d}", host="127.0.0.1", port=port, username=username(n),
                              relays=[relay.pk], host_keys=server.host_key + " pinned-by-test", labels=labels_for(n))
            for n, (server, port) in enumerate(ports)]


def ssh_connection_port(output: str) -> int:
    """The server port of `echo $SSH_CONNECTION` (client ip, client port, server ip, server port)."""
    words = output.split()
    assert len(words) == 4 and words[2] == "127.0.0.1", output
    return int(words[3])


@pytest.fixture
def fleet(api, hub, e2e_relay, start_agent, sshds, client_key, tmp_path: Path):
    """A started agent that has the key and all 24 targets' pins; returns the targets as the API made them."""
    relay = e2e_relay.relay
    share_ssh_key(relay, client_key[0])

    def start(username=lambda n: current_user()) -> list[dict]:
        targets = create_fleet(api, relay, sshds, username)
        start_agent(e2e_relay, hub, *FAST, "--known-hosts", str(tmp_path / "no_known_hosts"))
        wait_for(lambda: all_acked(relay), 15, "the credential and ssh_targets pushes to be acked")
        return targets

    return start


def test_a_selector_batch_runs_on_exactly_the_twenty_matching_targets(api, fleet) -> None:
    targets = fleet()
    selected = api.get("/api/v1/targets/", params={"selector": SELECTOR})
    assert selected.status_code == 200, selected.text
    expected = {t["name"]: t["port"] for t in targets[:20]}
    assert sorted(t["name"] for t in selected.json()["results"]) == sorted(expected)

    created = api.post("/api/v1/batches/", {"selector": SELECTOR, "target_type": "ssh",
                                            "command": 'echo "$SSH_CONNECTION"', "timeout_ms": 20_000,
                                            "max_concurrency": "25%", "max_errors": "10%"})
    assert created.status_code == 201, created.text
    assert (created.json()["max_concurrency"], created.json()["max_errors"]) == (5, 2)  # of 20: up, and down
    assert created.json()["counts"]["total"] == 20
    batch = api.finished_batch(created.json()["id"])

    assert batch["status"] == "completed" and batch["stopped"] is False
    assert batch["counts"] == {"completed": 20, "failed_runs": 0, "not_delivered": 0, "total": 20}
    assert {t["name"] for t in batch["targets"]} == set(expected)
    for target in batch["targets"]:
        assert (target["status"], target["exit_code"], target["delivered"]) == ("completed", 0, True), target
        assert target["host"] == "127.0.0.1"
        # It ran on the target's own port, hence on the sshd it names.
        assert ssh_connection_port(target["output"]) == expected[target["name"]], target
        assert isinstance(target["duration_ms"], int) and target["duration_ms"] >= 0, target
    # The rollout never had more than max_concurrency copies out at once.
    commands = list(Command.objects.filter(batch_id=batch["id"]))
    assert max(sum(c.created_at <= d.created_at < c.completed_at for c in commands) for d in commands) <= 5


def test_a_batch_stops_past_max_errors_and_cancels_the_rest(api, fleet, sshds) -> None:
    # The first four targets (by name, the batch's order) name a user no sshd lets in.
    fleet(username=lambda n: "no-such-fleet-user" if n < 4 else current_user())

    created = api.post("/api/v1/batches/", {"selector": SELECTOR, "target_type": "ssh",
                                            "command": 'sleep 2; echo "$SSH_CONNECTION"', "timeout_ms": 20_000,
                                            "max_concurrency": "25%", "max_errors": "10%"})
    assert created.status_code == 201, created.text
    batch = api.finished_batch(created.json()["id"])

    assert batch["status"] == "stopped" and batch["stopped"] is True
    by_status = Counter(t["status"] for t in batch["targets"])
    counts = batch["counts"]
    assert counts["total"] == 20 and sum(by_status.values()) == 20
    assert counts["failed_runs"] == by_status["failed"] >= 3  # past max_errors (2) ...
    assert by_status["failed"] <= 4  # ... and only the four with a bad user failed
    # Five went out at first; the two failures before the third made room for two more: the rest never ran.
    ran = [t for t in batch["targets"] if t["status"] in ("completed", "failed")]
    assert len(ran) <= 7
    assert counts["cancelled"] == by_status["cancelled"] == 20 - len(ran) >= 13
    for index, target in enumerate(batch["targets"]):
        if target["status"] == "failed":
            assert index < 4, target
            assert "no-such-fleet-user" in target["error"] and "authentication" in target["error"], target
        elif target["status"] == "completed":
            assert target["exit_code"] == 0 and target["output"].strip(), target
        else:
            # Never dispatched, or withdrawn before any relay claimed it.
            assert target["status"] == "cancelled", target
            if target["command_id"] is not None:
                assert Command.objects.get(pk=target["command_id"]).claimed_at is None, target
    assert not any("no-such-fleet-user" in t["error"] for t in batch["targets"][4:])
    # Nothing ran after the stop: the batch's commands are the ones that ran, and any withdrawn unclaimed.
    assert Command.objects.filter(batch_id=batch["id"], claimed_at__isnull=False).count() == len(ran)


def test_a_target_whose_relay_is_offline_is_undelivered_and_never_an_error(api, fleet) -> None:
    targets = fleet()
    offline = RelayAssignment.issue(machine_id="offline-machine", name="offline relay").relay  # never started
    stranded = api.create_target(name="stranded", host="127.0.0.1", port=targets[0]["port"],
                                 username=current_user(), relays=[offline.pk], labels={"env": "prod"})
    live = [t["id"] for t in targets[:3]]

    created = api.post("/api/v1/batches/", {"targets": [live[0], stranded["id"], *live[1:]],
                                            "command": 'echo "$SSH_CONNECTION"', "max_errors": 0})
    assert created.status_code == 201, created.text
    batch = api.finished_batch(created.json()["id"])

    assert batch["stopped"] is False and batch["status"] != "stopped"
    assert batch["counts"] == {"completed": 3, "undelivered": 1, "failed_runs": 0, "not_delivered": 1, "total": 4}
    [never] = [t for t in batch["targets"] if t["name"] == "stranded"]
    assert never["machine_id"] == "offline-machine"
    assert (never["status"], never["delivered"], never["exit_code"]) == ("undelivered", False, None)
    assert "offline-machine" in never["error"]
    for target in batch["targets"]:
        if target["name"] != "stranded":
            assert (target["status"], target["exit_code"], target["delivered"]) == ("completed", 0, True), target
    # The offline relay never saw it: no copy waits in its queue.
    assert not Command.objects.filter(machine_id="offline-machine").exclude(status="undelivered").exists()

    # Rerunning the failed ones sends only the one never delivered; its relay is still offline.
    rerun = api.post(f"/api/v1/batches/{batch['id']}/rerun-failed/")
    assert rerun.status_code == 201, rerun.text
    assert [t["name"] for t in rerun.json()["targets"]] == ["stranded"]
    assert rerun.json()["targets"][0]["status"] == "undelivered"
