"""A PostgreSQL cluster of a test's own, on a free loopback port, that the test may restart at will.

The suite's shared cluster serves the other tests running in parallel; restarting it would break them.
Needs root (initdb runs as the postgres user) and Debian's PostgreSQL binaries.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.processes import free_port


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(path.split("/")[4]))
    return Path(found[-1]).parent if found and os.geteuid() == 0 else None


class PrivatePostgres:
    def __init__(self) -> None:
        self.bin = binaries()
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="relayhub-pg-"))
        self.data = self.home / "data"
        self.url = f"postgres://relayhub:relayhub@127.0.0.1:{self.port}/relayhub"

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> PrivatePostgres:
        shutil.chown(self.home, "postgres")
        os.chmod(self.home, 0o700)
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.home} -c fsync=off"
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                          str(self.home / "log"), "-w", "start")
        self.psql("CREATE ROLE relayhub LOGIN PASSWORD 'relayhub' CREATEDB")
        self.psql("CREATE DATABASE relayhub OWNER relayhub")
        return self

    def psql(self, sql: str) -> None:
        self._as_postgres(str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                          "-v", "ON_ERROR_STOP=1", "-qc", sql)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the server is back once it accepts them."""
        # -l: the new server writes to its log, not to this pipe, which would otherwise stay open
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.home / "log"), "-m", "fast",
                          "-w", "restart")

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
                        "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.home, ignore_errors=True)
