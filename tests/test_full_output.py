"""Full output kept through the storage API: the relay's upload route, the API and admin downloads, deletion."""

from __future__ import annotations

import hashlib
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.utils import timezone

from commands import full_output
from commands.models import Command, FullOutput
from commands.tasks import prune_full_output
from tests.conftest import api_client_for, client_for
from tests.test_relay_extensions import next_

BODY = "".join(f"line {i} ✓\n" for i in range(1, 2001)).encode() + b"\xff raw bytes stay raw\n"


@pytest.fixture
def store(settings, tmp_path) -> Path:
    """Full output kept, in a directory of this test's own, with a small cap."""
    root = tmp_path / "command-output"
    settings.RELAYHUB = {**settings.RELAYHUB, "KEEP_FULL_OUTPUT": True, "FULL_OUTPUT_MAX_BYTES": 100_000,
                         "OUTPUT_CAP_BYTES": 1000}
    settings.STORAGES = {**settings.STORAGES, "command_output": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(root), "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700}}}
    return root


@pytest.fixture
def running(store, relay, relay_client, make_command) -> Command:
    command = make_command()
    wire = next_(relay_client, waitMs=0).json()["commands"][0]
    assert wire["fullOutput"] == {"maxBytes": 100_000, "overBytes": 1000}
    command.refresh_from_db()
    return command


def upload(client, command: Command, body: bytes = BODY, stream: str = "stdout", attempt: int | None = None,
           sha256: str | None = None):
    query = (f"commandId={command.pk}&attempt={attempt or command.attempt}&stream={stream}"
             f"&sha256={sha256 or hashlib.sha256(body).hexdigest()}")
    return client.post(f"/relay/commands/full-output?{query}", data=body, content_type="application/octet-stream")


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def download(client, command: Command, stream: str = "stdout"):
    return client.get(f"/api/v1/commands/{command.pk}/full-output/?stream={stream}")


def content(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_relay_uploads_and_an_operator_downloads_the_same_bytes(running, relay_client, admin_api, store):
    answer = upload(relay_client, running)

    assert answer.status_code == 200, answer.content
    assert answer.json() == {"success": True}
    row = FullOutput.objects.get(command=running, stream="stdout")
    assert (row.size, row.sha256) == (len(BODY), hashlib.sha256(BODY).hexdigest())
    [path] = stored_files(store)
    assert path.read_bytes() == BODY
    response = download(admin_api, running)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="command-{running.pk}-stdout.txt"'
    assert response["Content-Length"] == str(len(BODY))
    assert content(response) == BODY
    listed = admin_api.get(f"/api/v1/commands/{running.pk}/").json()["full_output"]
    assert listed == {"stdout": {"size": len(BODY), "sha256": row.sha256, "url": (
        f"http://testserver/api/v1/commands/{running.pk}/full-output/?stream=stdout")}}


def test_stored_files_are_private(running, relay_client, store):
    assert upload(relay_client, running).status_code == 200

    [path] = stored_files(store)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in [store, *path.relative_to(store).parents]:
        if directory != Path("."):
            assert stat.S_IMODE((store / directory).stat().st_mode) == 0o700, directory


def test_a_stream_without_a_full_copy_is_404_and_a_wrong_stream_400(running, admin_api):
    assert download(admin_api, running).status_code == 404
    assert download(admin_api, running, "stdin").status_code == 400


def test_an_operator_who_cannot_see_the_command_gets_404(running, relay_client, make_operator, issue_relay):
    assert upload(relay_client, running).status_code == 200
    elsewhere = issue_relay(machine_id="machine-2", name="relay-2").relay
    stranger = api_client_for(make_operator("stranger", view=[elsewhere]))
    viewer = api_client_for(make_operator("viewer", view=[running.claimed_by]))

    assert download(stranger, running).status_code == 404
    assert content(download(viewer, running)) == BODY


def test_another_relays_upload_is_404(running, issue_relay):
    other_machine = client_for(issue_relay(machine_id="machine-2", name="relay-2"))
    same_machine = client_for(issue_relay(name="relay-3"))  # may see the command, but did not claim it

    assert upload(other_machine, running).status_code == 404
    assert upload(same_machine, running).status_code == 404
    assert not FullOutput.objects.exists()


def test_a_command_nobody_claimed_is_404_and_a_stale_attempt_409(store, relay_client, make_command, running):
    pending = make_command()

    assert upload(relay_client, pending, attempt=1).status_code == 404
    stale = upload(relay_client, running, attempt=running.attempt + 1)
    assert stale.status_code == 409
    assert stale.json()["success"] is False
    assert not stored_files(store)


def test_too_large_is_413_with_the_limit_and_nothing_is_stored(settings, running, relay_client, store):
    settings.RELAYHUB = {**settings.RELAYHUB, "FULL_OUTPUT_MAX_BYTES": 1000}

    answer = upload(relay_client, running)

    assert answer.status_code == 413
    assert answer.json() == {"success": False,
                             "error": f"full output of {len(BODY)} bytes is over this hub's limit of 1000 bytes"}
    assert not stored_files(store)


def test_the_route_takes_more_than_the_general_body_limit(settings, running, relay_client):
    settings.RELAYHUB = {**settings.RELAYHUB, "MAX_BODY_BYTES": 1000}

    assert upload(relay_client, running).status_code == 200
    assert relay_client.post("/relay/heartbeat", {"pad": "x" * 2000}, format="json").status_code == 413


def test_a_body_that_does_not_match_its_hash_is_refused_and_not_kept(running, relay_client, store):
    answer = upload(relay_client, running, sha256=hashlib.sha256(b"something else").hexdigest())

    assert answer.status_code == 400
    assert "sha256" in answer.json()["error"]
    assert not stored_files(store) and not FullOutput.objects.exists()


@pytest.mark.parametrize("query", ["", "commandId=1&attempt=1&stream=stdout", "commandId=1&attempt=x&stream=stdout"
                                   "&sha256=" + "0" * 64, "commandId=1&attempt=1&stream=stdin&sha256=" + "0" * 64])
def test_a_malformed_query_is_400(running, relay_client, query):
    answer = relay_client.post(f"/relay/commands/full-output?{query}", data=b"x",
                               content_type="application/octet-stream")

    assert answer.status_code == 400
    assert answer.json()["success"] is False


def test_without_a_key_401_and_when_the_hub_keeps_no_full_output_409(settings, running, relay_client):
    from rest_framework.test import APIClient

    assert upload(APIClient(), running).status_code == 401
    settings.RELAYHUB = {**settings.RELAYHUB, "KEEP_FULL_OUTPUT": False}
    answer = upload(relay_client, running)
    assert answer.status_code == 409
    assert "does not keep full output" in answer.json()["error"]


def test_a_resend_is_taken_once_and_a_new_copy_replaces_the_old(running, relay_client, store,
                                                                django_capture_on_commit_callbacks):
    assert upload(relay_client, running).status_code == 200
    assert upload(relay_client, running).status_code == 200
    assert len(stored_files(store)) == 1

    with django_capture_on_commit_callbacks(execute=True):
        assert upload(relay_client, running, body=b"other\n" * 500).status_code == 200

    [path] = stored_files(store)
    assert path.read_bytes() == b"other\n" * 500
    assert FullOutput.objects.get().size == 3000


def test_no_full_output_is_asked_for_when_not_kept_or_from_original_relays(relay_client, make_command):
    make_command()
    assert "fullOutput" not in next_(relay_client, waitMs=0).json()["commands"][0]


def test_original_relays_claiming_are_never_asked(store, relay_client, make_command):
    command = make_command()
    claimed = relay_client.post("/relay/commands/claim", {"commandId": str(command.pk)}, format="json").json()
    assert claimed["success"] and "fullOutput" not in claimed["command"]


def test_deleting_a_command_deletes_its_files_once_that_commits(running, relay_client, store,
                                                                django_capture_on_commit_callbacks):
    assert upload(relay_client, running).status_code == 200
    assert upload(relay_client, running, stream="stderr").status_code == 200
    assert len(stored_files(store)) == 2

    with django_capture_on_commit_callbacks() as callbacks:
        Command.objects.filter(pk=running.pk).delete()
    assert len(stored_files(store)) == 2  # a rolled-back deletion must find its files still there
    for callback in callbacks:
        callback()

    assert not stored_files(store)


def test_the_sweep_drops_old_full_copies_only(settings, running, relay_client, make_command, store,
                                              django_capture_on_commit_callbacks):
    assert upload(relay_client, running).status_code == 200
    Command.objects.filter(pk=running.pk).update(completed_at=timezone.now() - timedelta(days=31))
    recent = make_command()
    next_(relay_client, waitMs=0, holding=[str(running.pk)])
    recent.refresh_from_db()
    assert upload(relay_client, recent).status_code == 200
    Command.objects.filter(pk=recent.pk).update(completed_at=timezone.now() - timedelta(days=29))

    with django_capture_on_commit_callbacks(execute=True):
        assert prune_full_output() == 1

    assert list(FullOutput.objects.values_list("command", flat=True)) == [recent.pk]
    assert len(stored_files(store)) == 1
    assert storages[full_output.STORAGE_ALIAS].exists(FullOutput.objects.get().name)


def test_the_admin_page_links_each_copy_and_serves_it_to_viewers_only(running, relay_client, admin_client_,
                                                                      make_operator, issue_relay):
    from django.test import Client

    assert upload(relay_client, running).status_code == 200
    url = f"/admin/commands/command/{running.pk}/full-output/stdout/"

    page = admin_client_.get(f"/admin/commands/command/{running.pk}/change/").content.decode()
    size = full_output.size_text(len(BODY))
    assert f'<a href="{url}" class="rh-download" data-stream="stdout">Download full stdout ({size})</a>' in page
    assert content(admin_client_.get(url)) == BODY
    state = admin_client_.get(f"/admin/commands/command/{running.pk}/state/").json()
    assert state["full_output"] == [{"stream": "stdout", "label": f"Download full stdout ({size})", "url": url}]

    stranger = Client()
    stranger.force_login(make_operator("stranger", view=[issue_relay(machine_id="m-2", name="r-2").relay]))
    assert stranger.get(url).status_code == 404
    assert admin_client_.get(url.replace("stdout", "stderr")).status_code == 404


def test_size_text():
    assert [full_output.size_text(n) for n in (300, 12 * 1024, 1536 * 1024, 100 << 20, 3 << 30)] == [
        "300 bytes", "12 KiB", "1.5 MiB", "100 MiB", "3 GiB"]


def test_any_storage_backend_will_do(settings, running, relay_client, admin_api):
    """Nothing assumes a local path: the same round trip through Django's in-memory storage."""
    settings.STORAGES = {**settings.STORAGES,
                         "command_output": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}

    assert upload(relay_client, running).status_code == 200
    assert content(download(admin_api, running)) == BODY


STORAGE_OF = "from django.conf import settings; import json; print(json.dumps(settings.STORAGES['command_output']))"


def storage_setting(**env: str) -> dict:
    import json
    import os
    import subprocess
    import sys

    from tests.e2e.processes import ROOT

    clean = {name: value for name, value in os.environ.items() if not name.startswith("RELAYHUB_FULL_OUTPUT")}
    result = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {STORAGE_OF}"], cwd=ROOT,
                            env={**clean, "DJANGO_SETTINGS_MODULE": "relayhub.settings", **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_storage_is_a_private_directory_by_default_and_s3_or_any_backend_by_setting(tmp_path):
    assert storage_setting(RELAYHUB_VAR_DIR=str(tmp_path)) == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "command-output"), "file_permissions_mode": 0o600,
                    "directory_permissions_mode": 0o700}}
    assert storage_setting(RELAYHUB_FULL_OUTPUT_STORAGE="s3", RELAYHUB_FULL_OUTPUT_S3_BUCKET="outputs",
                           RELAYHUB_FULL_OUTPUT_S3_ENDPOINT_URL="https://s3.internal:9000") == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "outputs", "location": "command-output", "endpoint_url": "https://s3.internal:9000",
                    "default_acl": "private", "file_overwrite": False}}
    assert storage_setting(RELAYHUB_FULL_OUTPUT_STORAGE="django.core.files.storage.InMemoryStorage",
                           RELAYHUB_FULL_OUTPUT_STORAGE_OPTIONS='{"base_url": "/nowhere/"}') == {
        "BACKEND": "django.core.files.storage.InMemoryStorage", "OPTIONS": {"base_url": "/nowhere/"}}


def test_a_command_carrying_secrets_is_never_kept_whole(store, relay_client, make_command):
    make_command(command="echo plain")
    make_command(command="echo $TOKEN", secret_environment={"TOKEN": "some-credential"})
    answers = {c["command"]: c for c in next_(relay_client, max=2, waitMs=0).json()["commands"]}
    assert "fullOutput" in answers["echo plain"]
    assert "fullOutput" not in answers["echo $TOKEN"], "its output is stored only masked"
