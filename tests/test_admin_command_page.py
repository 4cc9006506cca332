"""The command page and list: human units, words for booleans, times with seconds and zone, live facts."""

from __future__ import annotations

import re
from datetime import datetime, timezone as tz

import pytest

from commands import display

pytestmark = pytest.mark.django_db

MOMENT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


@pytest.mark.parametrize(("ms", "text"), [(None, "–"), (12, "12 ms"), (2350, "2.35 s"), (2500, "2.5 s"),
                                          (30_000, "30 s"), (90_000, "1 min 30 s"), (120_000, "2 min"),
                                          (3_600_000, "1 h"), (3_900_000, "1 h 5 min")])
def test_durations_read_in_human_units(ms, text):
    assert display.human_ms(ms) == text


def test_moments_carry_seconds_and_the_zone():
    assert display.moment(datetime(2026, 12, 2, 19, 48, 3, tzinfo=tz.utc)) == "2026-12-02 19:48:03 UTC"


def live(page: str, key: str) -> list[str]:
    return re.findall(rf'data-live="{key}"[^>]*>([^<]*)<', page)


def test_a_finished_command_reads_in_words_and_units(admin_client_, relay, make_command):
    command = make_command(command="echo hi", timeout_ms=120_000)
    command.claim(relay)
    command.start(relay, 1)
    command.finish(relay, 1, status="completed", exit_code=0, output="hi\n", duration_ms=2350)

    page = admin_client_.get(f"/admin/commands/command/{command.pk}/change/").content.decode()

    assert live(page, "timeout") == ["2 min", "2 min"]
    assert live(page, "duration") == ["2.35 s"]
    assert live(page, "output_truncated") == ["no"] and live(page, "cancel_requested") == ["no"]
    for key in ("completed_at", "started_at", "queued_at", "claimed_at"):
        assert all(MOMENT.fullmatch(text) for text in live(page, key)) and live(page, key), key
    assert "120000" not in page and "icon-no" not in page and "icon-yes" not in page
    assert "Completed at" in page and "Output truncated" in page


def test_the_state_endpoint_gives_the_facts_as_the_page_writes_them(admin_client_, relay, make_command):
    command = make_command(command="sleep 5")
    url = f"/admin/commands/command/{command.pk}/state/"
    pending = admin_client_.get(url).json()

    command.claim(relay)
    command.start(relay, 1)
    command.cancel()
    running = admin_client_.get(url).json()
    command.finish(relay, 1, status="cancelled", exit_code=-15, duration_ms=61_000)
    ended = admin_client_.get(url).json()

    assert (pending["status"], pending["finished"], pending["facts"]["completed_at"]) == ("pending", False, "–")
    assert running["status"] == "executing" and running["facts"]["cancel_requested"] == "yes"
    assert MOMENT.fullmatch(running["facts"]["started_at"])
    assert ended["finished"] and MOMENT.fullmatch(ended["facts"]["completed_at"])
    assert (ended["facts"]["exit_code"], ended["facts"]["duration"]) == ("-15", "1 min 1 s")


def test_the_state_endpoint_hides_commands_one_may_not_see(client, make_operator, make_command):
    command = make_command(machine_id="elsewhere")
    client.force_login(make_operator("op"))

    assert client.get(f"/admin/commands/command/{command.pk}/state/").status_code in (403, 404)


def test_the_command_list_shows_queued_at_creator_and_target_name(admin_client_, admin_user_api, make_command):
    long = "echo " + "word " * 80
    make_command(command=long, created_by=admin_user_api, target_type="ssh", target_host="10.0.0.9",
                 target_name="web-01")

    page = admin_client_.get("/admin/commands/command/").content.decode()

    headers = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page)
    assert headers.index("created_by") < headers.index("duration") and "queued_at" in headers
    assert "Queued at" in page and MOMENT.search(page)
    assert '<td class="field-target">web-01</td>' in page
    assert f'<code class="rh-ellipsis" title="{long}">' in page
    assert re.search(rf'<td class="field-created_by[^"]*">{admin_user_api.username}</td>', page), re.findall(r'<td class="field-created_by.{0,40}', page)
