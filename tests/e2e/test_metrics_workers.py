"""/metrics from a real hub with two uvicorn workers: what each worker counts is added up, a dead worker's too."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from commands.models import Command
from relayhub.web.metrics_files import pid_of
from tests.conftest import mark_online
from tests.e2e.processes import wait_for

TOKEN = "e2e-metrics-token-0123456789"  # noqa: S105 - a test value
HEARTBEATS = 120


def scrape(hub) -> dict[tuple[str, frozenset], float]:
    response = requests.get(f"{hub.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def requests_to(samples: dict, route: str) -> float:
    return sum(value for (name, labels), value in samples.items()
               if name == "relayhub_http_requests_total" and dict(labels)["route"] == route)


def per_worker(directory: Path, prefix: str, name: str, **labels: str) -> dict[int, float]:
    """The value of one sample in each process's own file, read apart from the others."""
    values = {}
    for path in directory.glob(f"{prefix}_*.db"):
        for family in MultiProcessCollector.merge([str(path)], accumulate=False):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    values[pid_of(path)] = values.get(pid_of(path), 0.0) + sample.value
    return values


def worker_pids(directory: Path) -> set[int]:
    return {pid_of(path) for path in directory.glob("counter_*.db")}


def heartbeat(hub, api_key: str) -> int:
    # A connection of its own each time, so that the kernel hands requests to either worker.
    headers = {"X-API-Key": api_key, "Connection": "close"}
    return requests.post(f"{hub.url}/relay/heartbeat", json={}, headers=headers, timeout=10).status_code


def test_counters_and_gauges_add_up_across_two_workers(start_hub, e2e_relay, tmp_path):
    directory = tmp_path / "metrics"
    hub = start_hub(workers=2, env={"RELAYHUB_METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(directory)})
    wait_for(lambda: len(worker_pids(directory)) == 2, 30, "both workers to count")
    key = e2e_relay.api_key
    mark_online(e2e_relay.relay)

    # Requests spread over both workers; every scrape, whichever worker answers it, sees them all.
    sent = 0
    while True:
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(lambda _: heartbeat(hub, key), range(HEARTBEATS))) == {200}
        sent += HEARTBEATS
        served = per_worker(directory, "counter", "relayhub_http_requests_total", route="relay/heartbeat")
        if len([count for count in served.values() if count]) == 2 or sent >= 5 * HEARTBEATS:
            break
    assert len([count for count in served.values() if count]) == 2, f"one worker served everything: {served}"
    for scrapes_before in range(4):
        samples = scrape(hub)
        assert requests_to(samples, "relay/heartbeat") == sent
        assert requests_to(samples, "metrics") == scrapes_before  # a scrape is counted once answered

    # Commands claimed and finished through the workers, counted where that happened.
    commands = [Command.objects.create(machine_id="e2e-machine", command="true") for _ in range(6)]
    done = 0
    while done < len(commands):
        claimed = requests.post(f"{hub.url}/relay/commands/next", json={"max": 2}, headers={"X-API-Key": key},
                                timeout=10).json()["commands"]
        for command in claimed:
            body = {"commandId": command["_id"], "attempt": command["attempt"], "success": True, "exitCode": 0,
                    "output": "ok"}
            result = requests.post(f"{hub.url}/relay/commands/result", json=body,
                                   headers={"X-API-Key": key, "Connection": "close"}, timeout=10)
            assert result.status_code == 200, result.text
            done += 1
    samples = scrape(hub)
    assert samples[("relayhub_command_queue_to_claim_seconds_count", frozenset())] == len(commands)
    assert samples[("relayhub_commands_finished_total", frozenset({("status", "completed")}))] == len(commands)
    assert samples[("relayhub_command_claim_to_finish_seconds_count", frozenset())] == len(commands)

    # Long-polls held in both workers add up; those of a worker that dies go with it, its counts stay.
    answers: list[object] = []

    def poll() -> None:
        try:
            answers.append(requests.post(f"{hub.url}/relay/commands/next", json={"max": 1, "waitMs": 20_000},
                                         headers={"X-API-Key": key, "Connection": "close"}, timeout=30).status_code)
        except requests.RequestException as exc:  # the worker holding it was killed
            answers.append(exc)

    polls = [threading.Thread(target=poll) for _ in range(6)]
    for thread in polls:
        thread.start()
    wait_for(lambda: scrape(hub)[("relayhub_longpolls_held", frozenset())] == 6, 20, "six long-polls held")
    held = per_worker(directory, "gauge_livesum", "relayhub_longpolls_held")
    victim = max(held, key=held.get)
    counted_before = scrape(hub)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(worker_pids(directory) - {victim}) == 2, 30, "uvicorn to replace the dead worker")
    survivors = sum(count for pid, count in held.items() if pid != victim)
    after = scrape(hub)
    assert after[("relayhub_longpolls_held", frozenset())] == survivors
    assert not list(directory.glob(f"gauge_livesum_{victim}.db"))  # reaped
    assert requests_to(after, "relay/heartbeat") == sent  # the dead worker's share is still counted
    assert after[("relayhub_commands_finished_total", frozenset({("status", "completed")}))] == len(commands)
    assert requests_to(after, "metrics") == requests_to(counted_before, "metrics") + 1

    Command.objects.create(machine_id="e2e-machine", command="true")  # ends the surviving polls at once
    for thread in polls:
        thread.join(35)
    assert len(answers) == 6
    time.sleep(0.2)
    assert scrape(hub)[("relayhub_longpolls_held", frozenset())] == 0


def test_one_process_started_by_serve_counts_in_a_private_directory_removed_at_exit(start_hub, e2e_relay):
    hub = start_hub(workers=1, env={"RELAYHUB_METRICS_TOKEN": TOKEN})
    for _ in range(3):
        assert heartbeat(hub, e2e_relay.api_key) == 200
    assert requests_to(scrape(hub), "relay/heartbeat") == 3
    # The process maps its counter files: they live in the directory serve made for it.
    maps = Path(f"/proc/{hub.proc.pid}/maps").read_text()
    files = {Path(line.split()[-1]) for line in maps.splitlines() if line.endswith(f"counter_{hub.proc.pid}.db")}
    assert len(files) == 1
    directory = files.pop().parent
    assert directory.name.startswith("relayhub-metrics-") and directory.stat().st_mode & 0o077 == 0
    assert hub.stop() == -signal.SIGTERM  # as uvicorn ends, having removed the directory first
    assert not directory.exists()
