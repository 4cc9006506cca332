"""A limited operator (staff, view_relay on relay A only) never sees relay B or its commands."""

from __future__ import annotations

from django.contrib.auth.models import User
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from assignments.models import RelayAssignment
from commands.models import Command
from tests.browser.conftest import PASSWORD


def test_a_limited_operator_sees_only_relay_a(browser, transactional_db) -> None:
    a = RelayAssignment.issue(machine_id="machine-a", name="relay-a").relay
    b = RelayAssignment.issue(machine_id="machine-b", name="relay-b").relay
    on_a = Command.objects.create(machine_id="machine-a", command="echo visible-on-a")
    on_b = Command.objects.create(machine_id="machine-b", command="echo hidden-on-b")
    operator = User.objects.create_user("operator", password=PASSWORD, is_staff=True)
    assign_perm("assignments.view_relay", operator, a)
    page = browser.page

    browser.login("operator")
    expect(page.get_by_test_id("relays-offline")).to_have_text("1")
    expect(page.get_by_test_id("count-pending")).to_have_text("1")
    assert "relay-b" not in page.content()
    browser.screenshot("operator-dashboard")

    browser.goto("/admin/assignments/relayassignment/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("relay-a")
    assert "relay-b" not in page.content()

    browser.goto("/admin/commands/command/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("visible-on-a")
    assert "hidden-on-b" not in page.content() and "machine-b" not in page.content()
    browser.screenshot("operator-commands")

    for hidden in (f"/admin/assignments/relayassignment/{b.pk}/change/", f"/admin/commands/command/{on_b.pk}/change/"):
        browser.goto(hidden)
        expect(page.locator(".messagelist")).to_contain_text("doesn’t exist")
        assert "relay-b" not in page.content() and "hidden-on-b" not in page.content()

    browser.goto(f"/admin/commands/command/{on_a.pk}/change/")
    expect(page.locator("#rh-status")).to_have_text("pending")
    expect(page.locator("#rh-cancel")).to_have_count(0)
