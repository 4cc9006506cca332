"""Fault test of issue 20: the network between the agents and the hub black-holes traffic for 10 s.

Packets are dropped, not refused (tests/e2e/blackhole.py): the agents' own timeouts must notice, and they
must recover without a restart, while 20 of them run 2,000 commands and exec() callers wait on some.
"""

from __future__ import annotations

import time

from assignments.models import RelayAssignment, RelayStatus
from tests.e2e.blackhole import BlackholeProxy
from tests.e2e.fault_support import ExecCallers, pg_only
from tests.e2e.processes import Hub, wait_for
from tests.e2e.test_faults import check_each_ran_at_most_once_and_no_result_was_lost, finished, queue

pytestmark = pg_only
AGENTS = 20
COMMANDS = 2000
EXEC_CALLERS = 10
HOLE_S = 10


class Behind:
    """The hub as the agents reach it: through the proxy."""

    def __init__(self, proxy: BlackholeProxy) -> None:
        self.url = proxy.url


def test_agents_recover_by_themselves_after_a_ten_second_black_hole(transactional_db, start_agent, tmp_path):
    ran_dir = tmp_path / "ran"
    ran_dir.mkdir()
    hub = Hub(tmp_path / "hub.log").start()
    proxy = BlackholeProxy(hub.port).start()
    try:
        issued = [RelayAssignment.issue(machine_id="fault-machine", name=f"relay-{n}") for n in range(AGENTS)]
        agents = [start_agent(key, Behind(proxy), "--heartbeat-interval", "2000", wait=False) for key in issued]
        tokens = queue("fault-machine", ran_dir, COMMANDS // 2)

        callers = ExecCallers("fault-machine", EXEC_CALLERS)
        callers.start(slice(0, EXEC_CALLERS // 2))
        wait_for(lambda: finished() >= COMMANDS // 4, 120, "a quarter of the commands to end", interval=0.1)

        proxy.black_hole(True)
        tokens |= queue("fault-machine", ran_dir, COMMANDS // 2)  # queued while the agents cannot reach the hub
        callers.start(slice(EXEC_CALLERS // 2, None))
        time.sleep(HOLE_S)
        proxy.black_hole(False)
        back_at = time.monotonic()
        lifted = RelayStatus.objects.order_by("-last_heartbeat_at").values_list("last_heartbeat_at", flat=True)[0]

        wait_for(lambda: finished() >= COMMANDS + EXEC_CALLERS, 240, "every command to end", interval=0.5)
        recovered = time.monotonic() - back_at
        print(f"\nblack hole {HOLE_S} s: every command ended {recovered:.1f} s after it lifted")
        check_each_ran_at_most_once_and_no_result_was_lost(tokens, ran_dir)
        callers.check_every_caller_was_answered()
        assert all(agent.proc.poll() is None for agent in agents), "no agent died or was restarted"
        wait_for(lambda: RelayStatus.objects.filter(last_heartbeat_at__gt=lifted).count() == AGENTS, 60,
                 "every agent's heartbeat after the hole")
    finally:
        proxy.stop()
        hub.kill()
