"""The real agent keeps the full output of a command over the cap, and the real hub serves it for download."""

from __future__ import annotations

import requests
from django.contrib.auth.models import User

from commands import output
from commands.models import Command, FullOutput
from relayhub.web import operator_tokens
from tests.e2e.processes import finished

FAST = ("--long-poll-wait", "500")
CAP = 4096
PRINTED = "".join(f"{i}\n" for i in range(1, 200_001))


def keeping_hub(start_hub, directory) -> object:
    return start_hub(env={"RELAYHUB_KEEP_FULL_OUTPUT": "1", "RELAYHUB_OUTPUT_CAP_BYTES": str(CAP),
                          "RELAYHUB_FULL_OUTPUT_DIR": str(directory)})


def get(hub, path: str) -> requests.Response:
    user = User.objects.filter(username="e2e-admin").first() or User.objects.create_superuser("e2e-admin")
    return requests.get(hub.url + path, headers={"Authorization": f"Token {operator_tokens.issue(user)}"},
                        timeout=30)


def test_the_capped_copy_and_a_byte_identical_full_download(start_hub, e2e_relay, start_agent, tmp_path) -> None:
    store = tmp_path / "command-output"
    hub = keeping_hub(start_hub, store)
    start_agent(e2e_relay, hub, *FAST)

    command = finished(Command.objects.create(machine_id="e2e-machine", command="seq 1 200000; echo oops >&2",
                                              timeout_ms=20_000), 30)

    assert command.status == "completed" and command.output_truncated
    assert command.output == PRINTED[:CAP // 4] + output.skip_marker(len(PRINTED) - CAP, CAP) + PRINTED[-3 * CAP // 4:]
    assert command.stderr == "oops\n"
    response = get(hub, f"/api/v1/commands/{command.pk}/full-output/?stream=stdout")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="command-{command.pk}-stdout.txt"'
    assert response.content == PRINTED.encode()
    [stored] = [path for path in store.rglob("*") if path.is_file()]
    assert stored.read_bytes() == PRINTED.encode()
    # stderr stayed within the cap: the command itself has all of it, and there is no other copy.
    assert get(hub, f"/api/v1/commands/{command.pk}/full-output/?stream=stderr").status_code == 404
    listed = get(hub, f"/api/v1/commands/{command.pk}/").json()["full_output"]
    assert list(listed) == ["stdout"] and listed["stdout"]["size"] == len(PRINTED)


def test_a_failing_upload_leaves_the_capped_copy_and_does_not_hold_the_result(start_hub, e2e_relay, start_agent,
                                                                                tmp_path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("the storage directory cannot be made under a file")
    hub = keeping_hub(start_hub, blocked / "command-output")
    agent = start_agent(e2e_relay, hub, *FAST)

    command = finished(Command.objects.create(machine_id="e2e-machine", command="seq 1 200000",
                                              timeout_ms=20_000), 30)

    assert command.status == "completed" and command.output_truncated
    assert command.output.endswith("199999\n200000\n")
    assert not FullOutput.objects.exists()
    assert "full output upload failed; the hub keeps the capped copy" in agent.output
