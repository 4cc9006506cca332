"""The idle real relay-agent's memory, long-polling the real hub (issue 20 targets 25 MB; `make bench` measures it).

The bound leaves room for a busier machine and the test harness, but not for the ssl, crypto or requests stacks
loaded at start again (each several MB; tests/agent/test_idle_footprint.py names them).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.e2e.processes import Agent

LIMIT_MB = 28


def rss_mb(agent: Agent) -> float:
    status = Path(f"/proc/{agent.proc.pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB$", status, re.M).group(1)) / 1024


def test_the_idle_agent_stays_small(hub, e2e_relay, start_agent) -> None:
    agent = start_agent(e2e_relay, hub, "--long-poll-wait", "1000", "--heartbeat-interval", "1000")
    time.sleep(4)  # several long-polls and heartbeats

    rss = rss_mb(agent)

    print(f"\nidle relay-agent RSS: {rss:.1f} MB (target 25 MB, bound {LIMIT_MB} MB)")
    assert rss < LIMIT_MB
