"""A long-poll answer with "configPending": true makes the agent fetch its configuration at once, not at a heartbeat."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from relay_agent.agent import Agent
from relay_agent.hub import HubClient
from relay_agent.settings import AgentSettings

from .stub_http import stub_server

PUSH = {"_id": "p-1", "pushType": "allowed_commands", "payload": {"commands": ["uptime"]}}


class Hub:
    """A stub hub: `next` answers come from `next_answer`; every request is timed."""

    def __init__(self, next_answer: Callable[[int], dict], pushes_delay: float = 0.0) -> None:
        self.next_answer = next_answer
        self.pushes_delay = pushes_delay
        self.started = threading.Event()  # set once the agent's start-up sync is over
        self.requests: list[tuple[float, str]] = []
        self.flagged_at: list[float] = []
        self._lock = threading.Lock()

    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append((time.monotonic(), path))
        route = path.partition("?")[0]
        if route == "/relay/verify":
            return 200, {"valid": True, "assignmentId": "r-1"}
        if route == "/relay/config-pushes":
            if self.started.is_set():
                time.sleep(self.pushes_delay)
            return 200, {"configPushes": [PUSH] if self.started.is_set() else []}
        if route == "/relay/shared-credentials":
            return 200, {"credentials": []}
        if route == "/relay/commands/next":
            if not self.started.wait(5):
                return 503, {}
            with self._lock:
                count = sum(1 for _, p in self.requests if p == route)
            data = self.next_answer(count)
            time.sleep(0.05)  # a long-poll with nothing to hand out, kept short
            if data.get("configPending"):
                self.flagged_at.append(time.monotonic())
            return 200, data
        return 200, {"success": True}

    def times(self, prefix: str) -> list[float]:
        with self._lock:
            return [at for at, path in self.requests if path.startswith(prefix)]


@contextmanager
def running_agent(hub: Hub, store_dir: Path) -> Iterator[Agent]:
    with stub_server(hub.answer) as (url, _):
        settings = AgentSettings(
            api_key="rly_test",
            hub_url=url,
            store_dir=store_dir,
            heartbeat_interval_ms=60_000,
            metrics_interval_ms=60_000,
            long_poll_wait_ms=100,
            shutdown_grace=5,
        )
        agent = Agent(settings)
        try:
            assert agent.start()
            hub.started.set()
            yield agent
        finally:
            agent.stop()
            agent.shutdown()
            agent.close()


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_config_pending_fetches_config_pushes_within_a_second(store_dir: Path) -> None:
    hub = Hub(lambda count: {"commands": [], "configPending": count == 2})

    with running_agent(hub, store_dir) as agent:
        at_start = len(hub.times("/relay/config-pushes"))
        assert wait_for(lambda: hub.flagged_at, 5)
        assert wait_for(lambda: len(hub.times("/relay/config-pushes")) > at_start, 1.0)
        fetched = hub.times("/relay/config-pushes")[at_start]
        assert wait_for(lambda: hub.times("/relay/config-pushes/ack"), 1.0)
        assert wait_for(lambda: len(hub.times("/relay/shared-credentials?")) > at_start, 1.0)

        assert fetched - hub.flagged_at[0] < 1.0
        assert agent.config.allowed_commands == ["uptime"]
        assert hub.times("/relay/heartbeat") == [], "a heartbeat did not bring it"


def test_no_flag_no_fetch(store_dir: Path) -> None:
    hub = Hub(lambda count: {"commands": []})

    with running_agent(hub, store_dir):
        at_start = len(hub.times("/relay/config-pushes"))
        assert wait_for(lambda: len(hub.times("/relay/commands/next")) >= 5, 5)

        assert len(hub.times("/relay/config-pushes")) == at_start


def test_a_slow_sync_does_not_hold_up_claiming_and_repeated_flags_coalesce(store_dir: Path) -> None:
    hub = Hub(lambda count: {"commands": [], "configPending": True}, pushes_delay=1.0)
    threads_before = threading.active_count()

    with running_agent(hub, store_dir):
        at_start = len(hub.times("/relay/config-pushes"))
        assert wait_for(lambda: len(hub.times("/relay/config-pushes")) > at_start, 1.0)
        first_fetch = hub.times("/relay/config-pushes")[at_start]
        time.sleep(1.5)
        threads_during = threading.active_count()
        claims_during_sync = [at for at in hub.times("/relay/commands/next") if first_fetch < at < first_fetch + 1.0]
        fetches = len(hub.times("/relay/config-pushes")) - at_start

    assert len(claims_during_sync) >= 5, "claiming went on while config pushes were being fetched"
    assert len(hub.flagged_at) >= 10
    assert fetches <= 3, "flags seen during a sync make one more sync, not one each"
    assert threads_during - threads_before <= 12, "no thread per flag"


def test_next_commands_still_returns_the_list_and_next_batch_reads_the_flag() -> None:
    answers = iter([
        {"commands": [{"_id": "1"}], "configPending": True},
        {"commands": [], "configPending": "yes"},
        {"commands": [], "configPending": True},
    ])
    with stub_server(lambda path, body: (200, next(answers))) as (url, _):
        client = HubClient(url, "key")
        assert client.next_commands(1, 10) == [{"_id": "1"}]
        assert client.next_batch(1, 10).config_pending is False, "only a JSON true counts"
        batch = client.next_batch(1, 10)

    assert (batch.commands, batch.config_pending) == ([], True)
