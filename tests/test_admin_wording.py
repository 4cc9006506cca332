"""The admin's words: plain titles, labels and plurals, no Django-derived "Ssh Key" or "Select relay to change"."""

from __future__ import annotations

import re

import pytest

from commands.choices import CommandStatus, Stream, TargetType
from configpush.models import ConfigPush, PushType
from credentials.models import CredentialType, StorageMode

pytestmark = pytest.mark.django_db

LISTS = {
    "assignments/relayassignment": "Relays",
    "commands/command": "Commands",
    "commands/commandbatch": "Command batches",
    "configpush/configpush": "Config pushes",
    "credentials/sharedcredential": "Shared credentials",
    "fleet/sshtarget": "SSH targets",
}


def h1(page: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", page, re.S).group(1).strip()


@pytest.mark.parametrize(("path", "title"), LISTS.items())
def test_a_list_is_titled_by_what_it_lists(admin_client_, path, title):
    page = admin_client_.get(f"/admin/{path}/").content.decode()

    assert h1(page) == title
    assert f"<title>{title} |" in page
    assert "to change" not in page and "to view" not in page


def test_an_object_page_is_titled_by_the_object(admin_client_, relay, make_command):
    command = make_command(command="uptime")

    relay_page = admin_client_.get(f"/admin/assignments/relayassignment/{relay.pk}/change/").content.decode()
    command_page = admin_client_.get(f"/admin/commands/command/{command.pk}/change/").content.decode()

    assert h1(relay_page) == str(relay) and "Change relay" not in relay_page
    assert h1(command_page) == f"#{command.pk} uptime" and "View command" not in command_page


def test_the_index_and_lists_say_config_pushes(admin_client_):
    assert "Config pushes" in admin_client_.get("/admin/").content.decode()
    assert "pushs" not in admin_client_.get("/admin/configpush/configpush/").content.decode().lower()


def test_choice_labels_are_written_out():
    assert dict(CredentialType.choices) == {"ssh_key": "SSH key", "password": "Password", "api_key": "API key"}
    assert dict(StorageMode.choices) == {"relay_only": "On the relay only", "shared": "Shared"}
    assert PushType.SSH_TARGETS.label == "SSH targets" and PushType.ALLOWED_COMMANDS.label == "Allowed commands"
    assert TargetType.SSH.label == "SSH" and Stream.STDOUT.label == "stdout"
    assert CommandStatus.TIMEOUT.label == "Timed out"


def test_the_credential_pages_show_ssh_key_and_api_key(admin_client_):
    add = admin_client_.get("/admin/credentials/sharedcredential/add/").content.decode()
    listing = admin_client_.get("/admin/credentials/sharedcredential/").content.decode()

    for page in (add, listing):
        assert "SSH key" in page and "API key" in page
        assert "Ssh Key" not in page and "Api Key" not in page


def test_two_pane_pickers_have_no_hold_down_control_hint(admin_client_, relay):
    for path in ("credentials/sharedcredential/add/", "fleet/sshtarget/add/"):
        page = admin_client_.get(f"/admin/{path}").content.decode()
        assert "selectfilter" in page.lower(), path
        assert "Hold down" not in page, path


def test_the_config_push_form_starts_with_an_object_and_labelled_types(admin_client_, relay):
    page = admin_client_.get("/admin/configpush/configpush/add/").content.decode()

    payload = re.search(r'<textarea name="payload"[^>]*>(.*?)</textarea>', page, re.S).group(1).strip()
    assert payload == "{}"
    assert '>SSH targets</option>' in page and '>Metrics interval</option>' in page
    assert "Ssh Targets" not in page and ">ssh_targets<" not in page


def test_the_config_push_list_filters_by_labelled_type(admin_client_, relay):
    ConfigPush.objects.create(relay=relay, push_type="metrics_interval", payload={"intervalMs": 5000})

    page = admin_client_.get("/admin/configpush/configpush/").content.decode()

    assert "Metrics interval" in page and "SSH targets" in page and "Acknowledged" in page
