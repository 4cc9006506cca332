"""The agent keeps a command's full output when the hub asks: spooled by the captures, uploaded after the run."""

from __future__ import annotations

import hashlib
import http.server
import json
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from relay_agent.executor import LocalExecutor
from relay_agent.full_output import UPLOAD_TRIES, FullOutput, keeping, requested
from relay_agent.hub import HubClient
from relay_agent.output import StreamCapture
from relay_agent.ssh import SSHPool

from .sshd import SSHServer
from .test_ssh import pool, store  # noqa: F401 - fixtures: a pool that trusts the test sshd

LINES = b"".join(b"%d \xe2\x9c\x93\n" % i for i in range(1, 3001)) + b"\xff\xfe not UTF-8\n"


def spooled(spool) -> bytes:
    return spool.rewound().read()


def test_a_capture_spools_the_raw_bytes_only_while_keeping():
    keeper = FullOutput("7", 1, max_bytes=1_000_000, over_bytes=5000)
    with keeping(keeper):
        kept = StreamCapture("stdout", 2000, None)
    plain = StreamCapture("stdout", 2000, None)
    for start in range(0, len(LINES), 999):
        kept.feed(LINES[start:start + 999])
        plain.feed(LINES[start:start + 999])

    spool = keeper.spools["stdout"]
    assert spooled(spool) == LINES
    assert spool.sha256 == hashlib.sha256(LINES).hexdigest()
    assert spool.threshold == 2000, "the smaller of the hub's cap and the agent's own"
    assert spool.wanted
    assert kept.text == plain.text and kept.truncated


def test_a_stream_within_the_cap_is_not_uploaded():
    keeper = FullOutput("7", 1, max_bytes=1_000_000, over_bytes=len(LINES))
    with keeping(keeper):
        capture = StreamCapture("stderr", 10 * len(LINES), None)
    capture.feed(LINES)

    assert not keeper.spools["stderr"].wanted


def test_a_stream_over_the_hubs_limit_is_dropped_not_spooled_further():
    keeper = FullOutput("7", 1, max_bytes=len(LINES) - 1, over_bytes=100)
    with keeping(keeper):
        capture = StreamCapture("stdout", 100, None)
    capture.feed(LINES)
    capture.close()

    spool = keeper.spools["stdout"]
    assert spool.dropped == f"over the hub's limit of {len(LINES) - 1} bytes"
    assert not spool.wanted
    assert spool.size == len(LINES)
    assert capture.truncated and capture.text.endswith("not UTF-8\n")


def test_a_real_commands_output_is_spooled_byte_for_byte():
    script = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read()); sys.stderr.write('small')"
    keeper = FullOutput("7", 1, max_bytes=1_000_000, over_bytes=1000)
    with tempfile.NamedTemporaryFile() as source:
        source.write(LINES)
        source.flush()
        with keeping(keeper):
            result = LocalExecutor(max_output=4096).run([sys.executable, "-c", script, source.name], 10_000)

    assert result.status == "completed" and result.output_truncated
    assert spooled(keeper.spools["stdout"]) == LINES
    assert keeper.spools["stdout"].wanted and not keeper.spools["stderr"].wanted
    assert result.stderr == "small"


def test_an_ssh_command_is_spooled_too_without_the_process_group_line(pool: SSHPool, sshd: SSHServer):  # noqa: F811
    keeper = FullOutput("7", 1, max_bytes=10_000_000, over_bytes=4096)
    pool.max_output = 4096
    with keeping(keeper):
        result = pool.run(sshd.host, sshd.port, sshd.user, "seq 1 100000; seq 1 50000 >&2", timeout_ms=20_000)

    assert result.status == "completed" and result.output_truncated
    assert spooled(keeper.spools["stdout"]) == "".join(f"{i}\n" for i in range(1, 100_001)).encode()
    assert spooled(keeper.spools["stderr"]) == "".join(f"{i}\n" for i in range(1, 50_001)).encode()


@pytest.mark.parametrize("command, attempt, expected", [
    ({"_id": "5", "fullOutput": {"maxBytes": 10, "overBytes": 5}}, 2, (10, 5)),
    ({"_id": "5", "fullOutput": {"maxBytes": 10, "overBytes": 5}}, None, None),
    ({"_id": "5"}, 2, None),
    ({"_id": "5", "fullOutput": True}, 2, None),
    ({"_id": "5", "fullOutput": {"maxBytes": "10", "overBytes": 5}}, 2, None),
    ({"_id": "5", "fullOutput": {"maxBytes": -1, "overBytes": 5}}, 2, None),
])
def test_only_a_well_formed_request_with_an_attempt_is_kept(command, attempt, expected):
    keeper = requested(command, attempt)
    assert (keeper and (keeper.max_bytes, keeper.over_bytes)) == expected


@contextmanager
def hub_answering(status: int) -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A server that reads each upload whole and answers it with ``status``."""
    received: list[tuple[str, bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            payload = json.dumps({"success": status == 200, "error": "no"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def kept(over_bytes: int = 100) -> FullOutput:
    keeper = FullOutput("42", 3, max_bytes=1_000_000, over_bytes=over_bytes)
    with keeping(keeper):
        for stream in ("stdout", "stderr"):
            StreamCapture(stream, 1000, None).feed(LINES if stream == "stdout" else b"short")
    return keeper


def test_the_upload_streams_each_stream_over_the_cap_with_its_hash():
    with hub_answering(200) as (url, received):
        kept().upload(HubClient(url, "rly_key"))

    [(path, body)] = received
    assert path.startswith("/relay/commands/full-output?")
    assert f"sha256={hashlib.sha256(LINES).hexdigest()}" in path
    assert "commandId=42&attempt=3&stream=stdout" in path
    assert body == LINES


def test_a_refused_upload_is_given_up_at_once(caplog):
    with hub_answering(413) as (url, received):
        kept().upload(HubClient(url, "rly_key"))

    assert len(received) == 1
    assert "full output upload failed" in caplog.text


def test_an_unavailable_hub_is_tried_a_few_times_then_given_up(monkeypatch, caplog):
    monkeypatch.setattr("relay_agent.full_output.UPLOAD_RETRY_S", (0.01, 0.01))
    with hub_answering(503) as (url, received):
        kept().upload(HubClient(url, "rly_key"))

    assert len(received) == UPLOAD_TRIES
    assert "the hub keeps the capped copy" in caplog.text
