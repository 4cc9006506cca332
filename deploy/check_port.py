"""`python deploy/check_port.py PORT`: exit 0 when the hub could listen on 127.0.0.1:PORT, 1 with a reason when not.

`make run` calls it before anything starts, so that a port already taken stops the run before the
demo agent is pointed at whatever answers there.
"""

from __future__ import annotations

import errno
import socket
import sys

HOST = "127.0.0.1"


def port_problem(port: int, host: str = HOST) -> str | None:
    """Why the hub could not listen on host:port, or None when it could."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a connection of an earlier run lingering in TIME_WAIT does not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on {host} is already in use (another program, or a relayhub still running). "
                    f"Stop it, or choose another port: make run PORT={port + 1 if port < 65535 else 8000}"
                )
            if exc.errno == errno.EACCES:
                return f"port {port} on {host} needs privileges this user lacks; choose one above 1023, as 8000"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit() or not 1 <= int(argv[0]) <= 65535:
        print(f"relayhub: PORT must be a number from 1 to 65535, not {' '.join(argv) or 'nothing'!r}", file=sys.stderr)
        return 2
    problem = port_problem(int(argv[0]))
    if problem:
        print(f"relayhub: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
