"""An idle relay-agent holds no module it does not need yet: its RSS target (issue 20, at most 25 MB) depends on it.

The agent runs as `relay-agent` starts (`from relay_agent.cli import main`), against a stub hub over plain
http, until it long-polls; then it lists its own `sys.modules` on SIGUSR1. The SSH, crypto, TLS and
self-update stacks, and requests, must load only when first needed (the bench's `footprint` measures the RSS).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .stub_http import stub_server
from .test_cli import without_relay_env

# Started as the console script starts the agent, plus a SIGUSR1 handler that writes sys.modules to a file.
ENTRY = """
import os, signal, sys
def dump(signum, frame):
    with open(os.environ["MODULES_FILE"] + ".tmp", "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
    os.replace(os.environ["MODULES_FILE"] + ".tmp", os.environ["MODULES_FILE"])
signal.signal(signal.SIGUSR1, dump)
from relay_agent.cli import main
sys.exit(main())
"""

NOT_WHILE_IDLE = [
    "paramiko", "cryptography", "bcrypt", "nacl",  # SSH and the credential store's crypto
    "requests", "urllib3", "charset_normalizer", "idna", "certifi",  # the HTTP stack the agent no longer uses
    "ssl", "_ssl", "http.client", "urllib.request",  # TLS: an http hub never needs it
    "encodings.idna", "stringprep", "unicodedata",  # what a str host name costs getaddrinfo
    "hashlib", "_hashlib", "hmac", "secrets",  # OpenSSL's libcrypto, through hashlib
    "zipfile", "tempfile", "email", "email.parser", "lzma", "bz2", "csv",  # self-update and full output
]


def idle_hub(long_polled: threading.Event):
    def answer(path: str, body: dict) -> tuple[int, dict]:
        route = path.partition("?")[0]
        if route == "/relay/verify":
            return 200, {"valid": True, "assignmentId": "r-1", "machineId": "m-1"}
        if route == "/relay/config-pushes":
            return 200, {"configPushes": []}
        if route == "/relay/shared-credentials":
            return 200, {"credentials": []}
        if route == "/relay/commands/next":
            long_polled.set()
            time.sleep(min(body.get("waitMs", 0) / 1000, 1.0))
            return 200, {"commands": []}
        return 200, {"success": True, "cancelCommandIds": []}

    return answer


def idle_modules(tmp_path: Path, extra_env: dict[str, str]) -> set[str]:
    modules_file = tmp_path / "modules.txt"
    long_polled = threading.Event()
    with stub_server(idle_hub(long_polled)) as (hub, _):
        env = without_relay_env(RELAY_API_KEY="rly_idle_test", MODULES_FILE=str(modules_file), **extra_env)
        env = {k: v for k, v in env.items() if not k.lower().endswith("_proxy")}
        agent = subprocess.Popen(
            [sys.executable, "-c", ENTRY, hub, "--store-dir", str(tmp_path / "store"), "--long-poll-wait", "1000",
             "--log-level", "warning"],
            env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert long_polled.wait(30), "the agent never long-polled"
            time.sleep(1.0)  # a heartbeat's and a status report's worth of being idle
            os.kill(agent.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while not modules_file.exists() and time.monotonic() < deadline and agent.poll() is None:
                time.sleep(0.05)
            assert modules_file.exists(), "the agent did not list its modules"
        finally:
            agent.terminate()
            _, stderr = agent.communicate(timeout=30)
    assert agent.returncode == 0, stderr
    return set(modules_file.read_text().split())


@pytest.mark.parametrize("setup", ["bare", "shared-secret", "stored-credential"])
def test_the_idle_agent_has_not_loaded_what_it_does_not_need(tmp_path: Path, relay_agent_bin: Path,
                                                           setup: str) -> None:
    if setup == "stored-credential":  # its metadata goes into each status report; its value stays encrypted
        value = tmp_path / "password"
        value.write_text("hunter2\n")
        subprocess.run([str(relay_agent_bin), "credentials", "add", "db", "--type", "password", "--target-host",
                        "10.0.0.5", "--username", "root", "--value-file", str(value), "--store-dir",
                        str(tmp_path / "store")], check=True, capture_output=True, env=without_relay_env())
    modules = idle_modules(tmp_path, {"RELAY_SHARED_SECRET": "transport-secret"} if setup == "shared-secret" else {})

    assert "relay_agent.agent" in modules and "relay_agent.hub_http" in modules, "the control: the agent ran"
    loaded = sorted(m for m in modules for heavy in NOT_WHILE_IDLE if m == heavy or m.startswith(heavy + "."))
    assert loaded == []
