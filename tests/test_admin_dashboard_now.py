"""The dashboard shows what runs and waits now, and its failures table fits its panel."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def test_the_dashboard_counts_running_and_pending_commands_and_the_oldest_wait(admin_client_, relay, make_command):
    now = timezone.now()
    make_command(command="a", created_at=now - timedelta(minutes=2, seconds=5))
    make_command(command="b", created_at=now - timedelta(days=3))  # still waiting, from before the last 24 h
    claimed, executing, done = (make_command(command=name) for name in ("c", "d", "e"))
    claimed.claim(relay)
    for command in (executing, done):
        command.claim(relay)
        command.start(relay, 1)
    done.finish(relay, 1, status="completed", exit_code=0)
    make_command(machine_id="unseen", command="f")  # no relay serves it: it still waits

    response = admin_client_.get("/admin/")

    assert (response.context["running_now"], response.context["pending_now"]) == (2, 3)
    assert timedelta(days=3) <= response.context["oldest_pending_age"] < timedelta(days=3, minutes=1)
    page = response.content.decode()
    assert 'data-testid="running-now">2<' in page and 'data-testid="pending-now">3<' in page
    assert "the oldest for 72 h" in page


def test_nothing_waiting_says_so(admin_client_, relay, make_command):
    make_command().claim(relay)

    response = admin_client_.get("/admin/")

    assert (response.context["running_now"], response.context["pending_now"]) == (1, 0)
    assert response.context["oldest_pending_age"] is None and "none waiting" in response.content.decode()


def test_the_pending_only_count_for_an_operator_is_limited_to_their_relays(client, make_operator, issue_relay,
                                                                            make_command):
    mine = issue_relay("mine", "relay-mine").relay
    issue_relay("other", "relay-other")
    make_command(machine_id="mine", created_at=timezone.now() - timedelta(seconds=42))
    make_command(machine_id="other", created_at=timezone.now() - timedelta(hours=5))
    client.force_login(make_operator("op", view=[mine]))

    response = client.get("/admin/")

    assert response.context["pending_now"] == 1
    assert re.search(r"the oldest for 4\d s", response.content.decode())  # 42 s, and the time the test took


def test_long_failures_are_cut_with_an_ellipsis_and_kept_whole_in_the_title(admin_client_, relay, make_command):
    long = "find / -name " + "x" * 300
    failed = make_command(command=long)
    failed.claim(relay)
    failed.finish(relay, 1, status="failed", exit_code=1, error="e" * 400)

    page = admin_client_.get("/admin/").content.decode()

    assert 'class="rh-table rh-table-fixed rh-failures"' in page
    assert f'<code class="rh-ellipsis" title="{long}">' in page and f'title="{"e" * 400}"' in page
