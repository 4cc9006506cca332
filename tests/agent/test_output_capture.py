"""The per-stream capper: the head and the tail of a stream within its byte cap, a marker for what was skipped."""

from __future__ import annotations

import re
import tracemalloc

import pytest
from relay_agent.options import agent_parser
from relay_agent.output import StreamCapture, char_boundary, head_bytes, parse_head, skip_marker
from relay_agent.settings import resolve

MARKER = re.compile(r"\n\[\.\.\. (\d+) bytes skipped by relayhub: output over the (\d+)-byte cap \.\.\.\]\n")

def capture_of(data: bytes, limit: int, head: int | None = None, piece: int = 7) -> tuple[StreamCapture, list]:
    emitted: list[tuple[str, int, str]] = []
    capture = StreamCapture("stdout", limit, lambda s, o, d: emitted.append((s, o, d)), head)
    for start in range(0, len(data), piece):
        capture.feed(data[start:start + piece])
    capture.close()
    return capture, emitted

def test_output_within_the_cap_is_kept_whole_and_only_the_head_is_streamed() -> None:
    data = bytes(range(32, 127)) * 10  # 950 bytes

    capture, emitted = capture_of(data, limit=1000, head=100)

    assert capture.text == data.decode()
    assert not capture.truncated
    assert "".join(d for _, _, d in emitted) == data.decode()[:100]

def test_over_the_cap_the_head_and_the_tail_are_kept_exactly_with_a_marker() -> None:
    data = "".join(f"{i}\n" for i in range(1, 5001)).encode()

    capture, emitted = capture_of(data, limit=1000, head=250, piece=333)

    assert capture.truncated
    assert capture.text == (data[:250].decode() + skip_marker(len(data) - 1000, 1000) + data[-750:].decode())
    assert MARKER.search(capture.text).group(1, 2) == (str(len(data) - 1000), "1000")
    # The live chunks are exactly the head, at the offsets the final text has them.
    assert [(o, d) for _, o, d in emitted][0][0] == 0
    assert "".join(d for _, _, d in emitted) == data[:250].decode()
    assert capture.text.startswith("1\n2\n")
    assert capture.text.endswith("4999\n5000\n")

def test_the_default_split_is_a_quarter_head_and_three_quarters_tail() -> None:
    data = b"x" * 3000 + b"y" * 3000

    capture, _ = capture_of(data, limit=400, piece=1000)

    assert capture.text == "x" * 100 + skip_marker(5600, 400) + "y" * 300

@pytest.mark.parametrize("head", [0, 400])
def test_a_head_only_or_tail_only_split(head: int) -> None:
    data = b"a" * 500 + b"b" * 500

    capture, emitted = capture_of(data, limit=400, head=head, piece=64)

    expected = "a" * 400 + skip_marker(600, 400) if head else skip_marker(600, 400) + "b" * 400
    assert capture.text == expected
    assert "".join(d for _, _, d in emitted) == "a" * head

@pytest.mark.parametrize("piece", [1, 2, 3, 5, 64])
def test_cuts_never_split_a_multibyte_character(piece: int) -> None:
    # 3-byte characters against a 10-byte head and 20-byte tail: neither cut falls on a character boundary.
    text = "€" * 100
    data = text.encode()

    capture, emitted = capture_of(data, limit=30, head=10, piece=piece)

    head = "".join(d for _, _, d in emitted)
    assert head == "€" * 3, "9 of the 10 head bytes: a 4th € would be cut"
    match = MARKER.search(capture.text)
    tail = capture.text[match.end():]
    assert capture.text[:match.start()] == head
    assert tail == "€" * 7, "the tail has 21 bytes of room left by the head, 7 whole characters"
    kept = len(head.encode()) + len(tail.encode())
    assert int(match.group(1)) == len(data) - kept
    assert "\ufffd" not in capture.text

def test_a_four_byte_character_at_the_tail_cut_is_skipped_whole() -> None:
    data = b"a" * 10 + "😀".encode() * 10  # 50 bytes

    capture, _ = capture_of(data, limit=16, head=4, piece=3)

    assert capture.text == "aaaa" + skip_marker(50 - 4 - 12, 16) + "😀" * 3

def test_memory_stays_bounded_through_50_mb() -> None:
    piece = bytes(range(48, 58)) * 6553 + b"\n"  # 65531 bytes, about what one os.read returns
    count = 50 * 1024 * 1024 // len(piece) + 1
    capture = StreamCapture("stdout", 1024, None)
    tracemalloc.start()
    try:
        for _ in range(count):
            capture.feed(piece)
        capture.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    total = count * len(piece)
    assert total > 50 * 1024 * 1024
    assert peak < 4 * len(piece), f"peak {peak} bytes: the capture must not hold what it skips"
    text = capture.text
    assert text.startswith(piece[:256].decode())
    assert text.endswith(piece[-768:].decode())
    assert MARKER.search(text).group(1) == str(total - 1024)

def test_helpers() -> None:
    assert head_bytes(1000, 0.25) == 250
    assert head_bytes(1000, 300) == 300
    assert head_bytes(1000, 5000) == 1000
    assert head_bytes(1000, 1.0) == 1000
    assert parse_head("0.5") == 0.5 and isinstance(parse_head("1.0"), float)
    assert parse_head("4096") == 4096 and isinstance(parse_head("1"), int)
    for bad in ("1.5", "-1", "x"):
        with pytest.raises(ValueError):
            parse_head(bad)
    encoded = "a€".encode()
    assert [char_boundary(encoded, i) for i in range(5)] == [0, 1, 1, 1, 4]

def _resolved(monkeypatch, *argv: str):
    for name in ("RELAY_MAX_OUTPUT", "RELAY_MAX_OUTPUT_HEAD"):
        monkeypatch.delenv(name, raising=False)
    parser = agent_parser()
    return resolve(parser.parse_args(["key", "http://127.0.0.1:1", *argv]), parser)[0]

def test_the_cap_and_split_come_from_options_then_the_environment(monkeypatch) -> None:
    settings = _resolved(monkeypatch)
    assert (settings.max_output, settings.max_output_head) == (1024 * 1024, 0.25)

    monkeypatch.setenv("RELAY_MAX_OUTPUT", "4096")
    monkeypatch.setenv("RELAY_MAX_OUTPUT_HEAD", "1024")
    parser = agent_parser()
    settings = resolve(parser.parse_args(["key", "http://127.0.0.1:1"]), parser)[0]
    assert (settings.max_output, settings.max_output_head) == (4096, 1024)

    settings = _resolved(monkeypatch, "--max-output", "2000", "--max-output-head", "0.5")
    assert (settings.max_output, settings.max_output_head) == (2000, 0.5)

    with pytest.raises(SystemExit):
        agent_parser().parse_args(["--max-output-head", "2.5"])

def test_an_unusable_head_in_the_environment_stops_the_agent(monkeypatch) -> None:
    monkeypatch.setenv("RELAY_MAX_OUTPUT_HEAD", "half")
    parser = agent_parser()
    with pytest.raises(SystemExit):
        resolve(parser.parse_args(["key", "http://127.0.0.1:1"]), parser)


def test_halving_a_refused_result_keeps_head_and_tail() -> None:
    from relay_agent.output import halve
    from relay_agent.results import _shrink

    data = "".join(f"{i}\n" for i in range(1, 5001)).encode()
    capture, _ = capture_of(data, limit=1000, head=250, piece=4096)

    smaller = halve(capture.text)

    assert smaller == data[:125].decode() + skip_marker(len(data) - 500, 1000) + data[-375:].decode()
    assert halve("ab" * 200) == "ab" * 50 + skip_marker(200, 400) + "ab" * 50
    body = _shrink({"commandId": "1", "attempt": 1, "output": capture.text, "stderr": ""})
    assert (body["output"], body["stderr"], body["outputTruncated"]) == (smaller, "", True)
    text = smaller
    for _ in range(20):
        text = halve(text)
    assert text == "", "halving ends, so a refused result is not resent forever"
