"""The real relay-agent streams a running command's output to the real hub as chunks (SPEC §3 extensions)."""

from __future__ import annotations

import sys

from commands import output
from commands.models import Command, OutputChunk
from tests.e2e.processes import finished, wait_for, wait_for_file

FAST = ("--long-poll-wait", "500")


def test_output_is_visible_while_the_command_runs(hub, e2e_relay, start_agent, tmp_path) -> None:
    start_agent(e2e_relay, hub, *FAST)
    gate = tmp_path / "gate"
    command = Command.objects.create(machine_id="e2e-machine", command=f"echo one; {wait_for_file(gate)}; echo two",
                                     timeout_ms=10_000)

    wait_for(lambda: output.read(command, "stdout")[0] == "one\n", 10, "the first line on the hub")

    command.refresh_from_db()
    assert command.status == "executing"
    gate.touch()
    assert finished(command).output == "one\ntwo\n"


def test_chunks_are_stored_in_order_and_add_up_to_the_result(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST)

    command = finished(Command.objects.create(
        machine_id="e2e-machine", command="echo one; sleep 0.6; echo two; echo err >&2; sleep 0.6; echo three",
        timeout_ms=10_000))

    assert command.status == "completed"
    assert output.read(command, "stdout") == (command.output, len(command.output))
    assert command.output == "one\ntwo\nthree\n"
    assert output.read(command, "stderr") == ("err\n", 4)
    stdout = list(OutputChunk.objects.filter(command=command, stream="stdout").values_list("offset", "data"))
    assert len(stdout) >= 2, "lines 0.6 s apart go out in separate posts"
    assert [offset for offset, _ in stdout] == [sum(len(d) for _, d in stdout[:i]) for i in range(len(stdout))]


def test_wide_characters_are_streamed_too(start_hub, e2e_relay, start_agent) -> None:
    # 400,000 emoji are within the agent's 512 Ki-character post, but JSON-escaped (12 bytes each) past the
    # hub's 4 MiB body cap: the agent must split them rather than resend the same post forever. Both stream
    # their whole cap live here (head fraction 1), the 1 MiB hub holding 262,144 of them.
    hub = start_hub(env={"RELAYHUB_OUTPUT_HEAD_FRACTION": "1.0"})
    start_agent(e2e_relay, hub, *FAST, "--max-output", "2000000", "--max-output-head", "1.0")
    command = Command.objects.create(machine_id="e2e-machine", timeout_ms=20_000, command=(
        f"{sys.executable} -c 'import sys; sys.stdout.write(chr(0x1F600) * 400_000)'; sleep 2; echo end"))

    wait_for(lambda: len(output.read(command, "stdout")[0]) >= 200_000, 10, "the emoji on the hub")

    command.refresh_from_db()
    assert command.status == "executing"
    assert finished(command).status == "completed"


def test_over_the_cap_the_head_and_the_tail_are_kept(hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST, "--max-output", "4096")
    command = Command.objects.create(machine_id="e2e-machine", command="seq 1 200000; echo oops >&2",
                                     timeout_ms=20_000)

    command = finished(command, 30)

    full = "".join(f"{i}\n" for i in range(1, 200_001))
    assert command.status == "completed"
    assert command.output_truncated
    assert command.output.startswith("1\n2\n")
    assert command.output.endswith("199999\n200000\n")
    assert command.output == full[:1024] + (
        f"\n[... {len(full) - 4096} bytes skipped by relayhub: output over the 4096-byte cap ...]\n") + full[-3072:]
    assert command.stderr == "oops\n"
    # What was streamed live is the head, at the offsets the final copy has it: a follower ends with the final copy.
    live, offset = output.read(command, "stdout")
    assert live == full[:1024]
    rest, _ = output.since(command, "stdout", offset)
    assert live + rest == command.output
