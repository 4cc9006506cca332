"""An SSH private key entered in the admin keeps its line breaks, reaches the relay, and logs in."""

from __future__ import annotations

from playwright.sync_api import expect

from configpush.models import ConfigPush
from credentials.models import SharedCredential
from relay_agent.config import AgentConfig
from relay_agent.ssh import SSHPool
from relay_agent.store import CredentialStore


def test_a_private_key_saved_in_the_admin_logs_in_to_sshd(browser, superuser, e2e_relay, sshd, tmp_path) -> None:
    assert sshd.client_key.count("\n") > 3  # a real multi-line OpenSSH key
    page = browser.page
    browser.login("admin")
    browser.goto("/admin/credentials/sharedcredential/add/")
    page.fill("#id_name", "deploy-key")
    page.select_option("#id_credential_type", "ssh_key")
    page.fill("#id_target_host", f"{sshd.host}:{sshd.port}")
    page.fill("#id_value", sshd.client_key)
    page.select_option("#id_assigned_relays_from", label=str(e2e_relay.relay))
    page.click("#id_assigned_relays_add")
    with page.expect_navigation():
        page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("Queued the credential for 1 relay")
    assert SharedCredential.objects.get().get_value() == sshd.client_key

    # What the relay receives, applied and used the way the agent does.
    push = ConfigPush.objects.get(relay=e2e_relay.relay, push_type="credential")
    store = CredentialStore(tmp_path / "store")
    AgentConfig(tmp_path / "store", store, e2e_relay.transport_secret).apply("credential", push.payload)
    pool = SSHPool(store, known_hosts=[sshd.write_known_hosts(tmp_path / "known_hosts")])
    try:
        result = pool.run(sshd.host, sshd.port, sshd.user, "echo logged-in-as-$(id -un)", 10_000)
    finally:
        pool.close()
    assert result.status == "completed", result.error
    assert result.output.strip() == f"logged-in-as-{sshd.user}"
