"""`make run` refuses a port already taken before anything starts (deploy/check_port.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "check_port.py"


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def taken() -> Iterator[int]:
    """A port some other program listens on, on every address (as `python -m http.server` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))  # nosec B104 - the point: a wildcard listener also takes 127.0.0.1
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def free() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_taken_port_is_refused_with_the_way_out(taken: int) -> None:
    result = check(str(taken))

    assert result.returncode == 1
    assert f"relayhub: port {taken} on 127.0.0.1 is already in use" in result.stderr
    assert f"make run PORT={taken + 1}" in result.stderr


def test_a_loopback_listener_takes_it_too() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert check(str(sock.getsockname()[1])).returncode == 1


def test_a_free_port_passes(free: int) -> None:
    result = check(str(free))

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_port_left_in_time_wait_by_an_earlier_run_passes(free: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", free))
        server.listen()
        client = socket.create_connection(("127.0.0.1", free))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end waits in TIME_WAIT
        client.close()

    assert check(str(free)).returncode == 0


@pytest.mark.parametrize("args", [("http",), ("0",), ("70000",), ()])
def test_a_port_that_is_not_one_is_a_usage_error(args: tuple) -> None:
    result = check(*args)

    assert result.returncode == 2
    assert "PORT must be a number from 1 to 65535" in result.stderr
