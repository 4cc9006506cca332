"""What the 20-agent fault tests share: PostgreSQL only, and exec() callers waiting through the fault."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection

from commands.execution import exec as hub_exec

pg_only = pytest.mark.skipif(
    "os.environ.get('DATABASE_URL', '').startswith('sqlite') or not os.environ.get('DATABASE_URL')",
    reason="the 20-agent fault runs are specified against PostgreSQL")


class ExecCallers:
    """Threads that each call exec() on ``machine_id`` and keep what it answered."""

    def __init__(self, machine_id: str, count: int) -> None:
        self.machine_id = machine_id
        self.answers: dict[int, tuple[str, object]] = {}
        self.threads = [threading.Thread(target=self._call, args=(n,)) for n in range(count)]

    def _call(self, index: int) -> None:
        token = uuid.uuid4().hex
        try:
            self.answers[index] = (token, hub_exec(self.machine_id, f"echo {token}", timeout_ms=60_000,
                                                   claim_timeout_ms=180_000))
        finally:
            connection.close()  # this thread's own, or the test database stays in use

    def start(self, which: slice) -> None:
        for thread in self.threads[which]:
            thread.start()

    def check_every_caller_was_answered(self) -> None:
        for thread in self.threads:
            thread.join(60)
        assert len(self.answers) == len(self.threads), "every exec() caller was answered"
        for token, result in self.answers.values():
            assert result.success and result.output == f"{token}\n", result
