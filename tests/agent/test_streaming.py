from __future__ import annotations

from relay_agent.streaming import take_chars


def test_whole_chunks_are_taken_while_they_fit() -> None:
    pending = [{"stream": "stdout", "offset": 0, "data": "ab"}, {"stream": "stderr", "offset": 0, "data": "cd"},
               {"stream": "stdout", "offset": 2, "data": "ef"}]

    assert take_chars(pending, 4) == [{"stream": "stdout", "offset": 0, "data": "ab"},
                                      {"stream": "stderr", "offset": 0, "data": "cd"}]
    assert pending == [{"stream": "stdout", "offset": 2, "data": "ef"}]


def test_a_chunk_that_does_not_fit_is_split_at_its_offset() -> None:
    pending = [{"stream": "stdout", "offset": 10, "data": "😀😀😀😀😀"}]

    first = take_chars(pending, 2)
    second = take_chars(pending, 2)

    assert first == [{"stream": "stdout", "offset": 10, "data": "😀😀"}]
    assert second == [{"stream": "stdout", "offset": 12, "data": "😀😀"}]
    assert pending == [{"stream": "stdout", "offset": 14, "data": "😀"}]
