"""The hub's own output cap: head and tail of each stream, a marker for the bytes skipped, live chunks that agree."""

from __future__ import annotations

import pytest

from commands import output
from commands.models import Command
from tests.test_relay_extensions import chunks, next_

LINES = "".join(f"{i}\n" for i in range(1, 2001))


@pytest.fixture
def small_cap(settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "OUTPUT_CAP_BYTES": 100, "OUTPUT_HEAD_FRACTION": 0.25}


def test_within_the_cap_the_output_is_kept_whole(small_cap):
    assert output.cap_final("x" * 100) == ("x" * 100, False)


def test_over_the_cap_the_head_and_tail_are_kept(small_cap):
    text, cut = output.cap_final(LINES)

    assert cut
    assert text == LINES[:25] + output.skip_marker(len(LINES) - 100, 100) + LINES[-75:]


def test_an_agents_head_and_tail_that_fit_are_kept_as_sent(small_cap):
    sent = LINES[:25] + output.skip_marker(123456, 100) + LINES[-75:]

    assert output.cap_final(sent) == (sent, True)


def test_an_agents_head_and_tail_over_this_hubs_cap_are_cut_again_and_the_skips_added_up(settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "OUTPUT_CAP_BYTES": 40, "OUTPUT_HEAD_FRACTION": 0.25}
    sent = LINES[:25] + output.skip_marker(1000, 100) + LINES[-75:]

    text, cut = output.cap_final(sent)

    assert cut
    # Head 10 of the agent's 25 bytes, tail the last 30 of its 75: 15 + 1000 + 45 skipped.
    assert text == LINES[:10] + output.skip_marker(1060, 40) + LINES[-30:]


def test_cuts_keep_whole_characters(settings):
    settings.RELAYHUB = {**settings.RELAYHUB, "OUTPUT_CAP_BYTES": 10, "OUTPUT_HEAD_FRACTION": 0.5}

    text, _ = output.cap_final("€" * 10)  # 30 bytes: the 5-byte head holds one €, the 7 bytes left two

    assert text == "€" + output.skip_marker(21, 10) + "€€"


@pytest.fixture
def running(relay, relay_client, make_command):
    command = make_command()
    next_(relay_client, waitMs=0)
    return command


def test_the_live_view_and_the_final_copy_agree(small_cap, relay_client, running):
    # An agent with a larger cap streams more than this hub's head, then sends head, marker and tail.
    relay_client.post("/relay/commands/output",
                      chunks(running, ("stdout", 0, LINES[:40]), ("stdout", 40, LINES[40:60])), format="json")
    live, offset = output.since(running, "stdout", 0)
    assert live == LINES[:25], "live chunks stop at the head of the final copy"

    sent = LINES[:60] + output.skip_marker(5000, 200) + LINES[-140:]
    response = relay_client.post("/relay/commands/result", {
        "commandId": str(running.pk), "success": True, "output": sent, "exitCode": 0, "attempt": 1,
        "outputTruncated": True}, format="json")
    assert response.status_code == 200

    command = Command.objects.get(pk=running.pk)
    assert command.output_truncated
    assert command.output == LINES[:25] + output.skip_marker(35 + 5000 + 65, 100) + LINES[-75:]
    rest, end = output.since(command, "stdout", offset)
    assert live + rest == command.output
    assert end == len(command.output)
