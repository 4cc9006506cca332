"""An operator logs in and finds the real, running relay online on the dashboard and in the relay list."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from assignments.models import RelayStatus

FAST = ("--long-poll-wait", "500")


def test_the_dashboard_shows_the_online_relay(browser, superuser, hub, e2e_relay, start_agent) -> None:
    start_agent(e2e_relay, hub, *FAST)
    page = browser.page

    browser.login("admin")

    expect(page.get_by_test_id("relays-online")).to_have_text("1")
    expect(page.get_by_test_id("relays-offline")).to_have_text("0")
    expect(page.locator(".rh-chart svg")).to_be_visible()
    browser.screenshot("dashboard")

    page.get_by_role("link", name=re.compile("relays online")).click()
    row = page.locator("#result_list tbody tr", has_text="e2e relay")
    expect(row.locator(".rh-badge")).to_have_text("online")
    expect(row.locator(".field-capabilities")).to_contain_text("local_cmd")
    browser.screenshot("relay-list")

    row.get_by_role("link", name="e2e relay").click()
    expect(page.locator("#rh-relay-status .rh-badge")).to_have_text("online")
    expect(page.locator("#rh-relay-status")).to_contain_text(RelayStatus.objects.get(pk=e2e_relay.relay.pk).version)
    browser.screenshot("relay-page")
