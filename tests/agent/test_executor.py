from __future__ import annotations

import subprocess
import threading
import time
import uuid

import psutil
import pytest
from relay_agent.executor import LocalExecutor, _wait_exit
from relay_agent.output import StreamCapture, skip_marker


def live_processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def unique_sleep() -> str:
    # A sleep length nobody else uses, so the test can find exactly its own processes.
    return f"30.{uuid.uuid4().int % 10**8:08d}"


def test_it_runs_a_command_and_captures_output() -> None:
    result = LocalExecutor().run("echo hello; echo oops >&2", timeout_ms=5000)

    assert result.status == "completed"
    assert result.success
    assert result.exit_code == 0
    assert result.output == "hello\n"
    assert result.stderr == "oops\n"
    assert result.error is None
    assert not result.output_truncated


def test_a_non_zero_exit_is_failed_with_its_code() -> None:
    result = LocalExecutor().run("echo partial; exit 3", timeout_ms=5000)

    assert result.status == "failed"
    assert not result.success
    assert result.exit_code == 3
    assert result.output == "partial\n"


def test_a_signal_death_reports_128_plus_signal() -> None:
    assert LocalExecutor().run("kill -9 $$", timeout_ms=5000).exit_code == 137


def test_output_is_streamed_before_the_command_exits() -> None:
    seen: list[tuple[float, str, int, str]] = []

    def on_output(stream: str, offset: int, data: str) -> None:
        seen.append((time.monotonic(), stream, offset, data))

    result = LocalExecutor().run("echo first; sleep 1; echo second", timeout_ms=5000, on_output=on_output)
    finished = time.monotonic()

    assert result.output == "first\nsecond\n"
    first_at, stream, offset, data = seen[0]
    assert (stream, offset, data) == ("stdout", 0, "first\n")
    assert finished - first_at >= 0.8, "the first chunk only arrived when the command ended"


def test_chunk_offsets_count_characters_per_stream() -> None:
    chunks: list[tuple[str, int, str]] = []
    result = LocalExecutor().run(
        "printf 'héllo '; sleep 0.1; printf err >&2; sleep 0.1; printf wörld",
        timeout_ms=5000,
        on_output=lambda s, o, d: chunks.append((s, o, d)),
    )

    for stream, text in (("stdout", result.output), ("stderr", result.stderr)):
        rebuilt = ""
        for s, offset, data in chunks:
            if s == stream:
                assert offset == len(rebuilt)
                rebuilt += data
        assert rebuilt == text
    assert result.output == "héllo wörld"


def test_the_decoder_keeps_multibyte_characters_split_across_reads() -> None:
    emitted: list[tuple[str, int, str]] = []
    capture = StreamCapture("stdout", 100, lambda s, o, d: emitted.append((s, o, d)))

    capture.feed("é".encode()[:1])
    assert emitted == []
    capture.feed("é".encode()[1:] + b"x\xff")
    capture.feed("ü".encode()[:1])
    capture.close()

    assert capture.text == "éx\ufffd\ufffd"
    assert emitted == [("stdout", 0, "éx\ufffd"), ("stdout", 3, "\ufffd")]


def test_output_is_capped_per_stream_keeping_head_and_tail() -> None:
    chunks: list[str] = []
    result = LocalExecutor(max_output=100).run(
        "seq 1 2000; echo short >&2",
        timeout_ms=5000,
        on_output=lambda s, o, d: chunks.append(d) if s == "stdout" else None,
    )

    full = "".join(f"{i}\n" for i in range(1, 2001))
    assert result.status == "completed"
    assert result.output == full[:25] + skip_marker(len(full) - 100, 100) + full[-75:]
    assert result.stderr == "short\n"
    assert result.output_truncated
    assert "".join(chunks) == full[:25], "only the head is streamed: the rest may yet be skipped"


def test_the_split_is_a_setting() -> None:
    result = LocalExecutor(max_output=100, max_output_head=1.0).run("seq 1 2000", timeout_ms=5000)

    full = "".join(f"{i}\n" for i in range(1, 2001))
    assert result.output == full[:100] + skip_marker(len(full) - 100, 100)


def test_timeout_kills_the_whole_process_group() -> None:
    marker = unique_sleep()
    started = time.monotonic()

    result = LocalExecutor(kill_grace=1).run(f"sleep {marker} & sleep {marker}", timeout_ms=300)

    assert result.status == "timeout"
    assert result.error == "execution timed out after 300 ms"
    assert result.exit_code is None
    assert time.monotonic() - started < 3
    assert live_processes_with(marker) == []


def test_a_child_ignoring_sigterm_is_killed_after_the_grace() -> None:
    marker = unique_sleep()

    result = LocalExecutor(kill_grace=0.3).run(f"trap '' TERM; sleep {marker}", timeout_ms=200)

    assert result.status == "timeout"
    assert live_processes_with(marker) == []


def test_cancel_kills_the_command() -> None:
    marker = unique_sleep()
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()

    result = LocalExecutor().run(f"echo before; sleep {marker} & sleep {marker}", timeout_ms=20_000, cancel=cancel)

    assert result.status == "cancelled"
    assert result.error == "command cancelled"
    assert result.output == "before\n"
    assert time.monotonic() - started < 3
    assert live_processes_with(marker) == []


def test_a_command_cancelled_before_it_starts_never_runs(tmp_path) -> None:
    cancel = threading.Event()
    cancel.set()

    result = LocalExecutor().run(f"touch {tmp_path / 'ran'}", timeout_ms=5000, cancel=cancel)

    assert result.status == "cancelled"
    assert not (tmp_path / "ran").exists()


def test_commands_run_concurrently() -> None:
    executor = LocalExecutor()
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(executor.run("sleep 0.5", timeout_ms=5000))) for _ in range(4)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status for r in results] == ["completed"] * 4
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("command", ["exit 0", "true"])
def test_commands_without_output_have_empty_strings(command: str) -> None:
    result = LocalExecutor().run(command, timeout_ms=5000)
    assert (result.output, result.stderr, result.exit_code) == ("", "", 0)


def test_a_command_that_closes_its_pipes_still_times_out() -> None:
    marker = unique_sleep()

    result = LocalExecutor().run(f"exec >&- 2>&-; sleep {marker}", timeout_ms=300)

    assert result.status == "timeout"
    assert live_processes_with(marker) == []


def test_waiting_for_the_exit_wakes_when_the_process_exits_not_at_the_timeout() -> None:
    proc = subprocess.Popen(["sleep", "0.2"])
    started = time.monotonic()
    _wait_exit(proc, 10)
    assert time.monotonic() - started < 5 and proc.poll() == 0

    running = subprocess.Popen(["sleep", "10"])
    try:
        started = time.monotonic()
        _wait_exit(running, 0.1)
        assert time.monotonic() - started < 5 and running.poll() is None
    finally:
        running.kill()
        running.wait()
