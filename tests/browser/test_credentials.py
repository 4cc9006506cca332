"""A shared credential's secret goes in once and never comes back out in any page."""

from __future__ import annotations

from playwright.sync_api import expect

from configpush.models import ConfigPush
from credentials.models import SharedCredential

SENTINEL = "Br0wser-s3ntinel-c4f1d2"


def test_a_shared_credential_secret_is_write_only(browser, superuser, e2e_relay) -> None:
    page = browser.page
    browser.login("admin")

    browser.goto("/admin/credentials/sharedcredential/add/")
    page.fill("#id_name", "db-password")
    page.select_option("#id_credential_type", "password")
    page.fill("#id_target_host", "db.internal")
    page.fill("#id_value", SENTINEL)
    page.select_option("#id_assigned_relays_from", label=str(e2e_relay.relay))
    page.click("#id_assigned_relays_add")
    with page.expect_navigation():
        page.click("input[name=_save]")

    expect(page.locator(".messagelist")).to_contain_text("Queued the credential for 1 relay")
    assert SENTINEL not in page.content()
    browser.screenshot("credential-list")
    credential = SharedCredential.objects.get()
    assert credential.get_value() == SENTINEL
    assert ConfigPush.objects.filter(relay=e2e_relay.relay, push_type="credential").count() == 1

    page.locator("#result_list").get_by_role("link", name="db-password").click()
    expect(page.locator("#id_value")).to_have_value("")
    assert SENTINEL not in page.content()

    browser.goto("/admin/credentials/sharedcredential/add/")
    page.fill("#id_name", "db-password")
    page.select_option("#id_credential_type", "password")
    page.fill("#id_target_host", "db.internal")
    page.fill("#id_value", SENTINEL)
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.click("input[name=_save]")
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator("#id_value")).to_have_value("")
    browser.screenshot("credential-error")
    assert SENTINEL not in posted.value.text()
    assert SENTINEL not in page.content()
    assert SharedCredential.objects.count() == 1

    for path in ("/admin/configpush/configpush/", f"/admin/credentials/sharedcredential/{credential.pk}/history/"):
        browser.goto(path)
        assert SENTINEL not in page.content()
