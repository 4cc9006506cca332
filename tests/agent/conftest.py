"""Fixtures for the relay agent tests; none of them need Django."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .sshd import SSHDUnavailable, SSHServer, run_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """A real OpenSSH server on 127.0.0.1, one per test process (so xdist workers never share one)."""
    try:
        with run_sshd(tmp_path_factory.mktemp("sshd")) as server:
            yield server
    except SSHDUnavailable as exc:
        pytest.skip(f"no sshd: {exc}")


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(scope="session")
def relay_agent_bin() -> Path:
    """The installed `relay-agent` console script, next to this interpreter."""
    script = Path(sys.executable).parent / "relay-agent"
    assert script.exists(), f"relay-agent is not installed in {script.parent} (pip install ./relay_agent)"
    return script


@pytest.fixture
def run_cli(relay_agent_bin: Path, store_dir: Path) -> Callable[..., subprocess.CompletedProcess]:
    def run(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(relay_agent_bin), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )

    return run
