"""Agent releases on the hub: the release key, publish_agent, the admin upload and list, the relay's wheel
download, the public key on verify; the private key never in any answer."""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from agentupdates import releases
from agentupdates.models import AgentRelease
from relayhub.relay import release_key
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def make_wheel(version: str = "9.9.9", name: str = "relay-agent") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("relay_agent/__init__.py", f"__version__ = {version!r}\n")
        wheel.writestr(f"relay_agent-{version}.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return buffer.getvalue()


@pytest.fixture
def key_file(tmp_path: Path, settings) -> Path:
    path = tmp_path / "keys" / "release.pem"
    settings.RELAYHUB = {**settings.RELAYHUB, "AGENT_RELEASE_KEY_FILE": str(path)}
    settings.STORAGES = {**settings.STORAGES, "agent_releases": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "rel")}}}
    return path


@pytest.fixture
def public_key(key_file: Path, capsys) -> str:
    call_command("agent_release_key")
    return capsys.readouterr().out.strip()


def private_pem(key_file: Path) -> str:
    return key_file.read_text()


def private_markers(key_file: Path) -> list[str]:
    """Texts that would show the private key: its PEM body, its raw bytes in base64 and hex."""
    key = release_key.private_key()
    from cryptography.hazmat.primitives import serialization
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    body = "".join(line for line in private_pem(key_file).splitlines() if "-----" not in line)
    return [body, base64.b64encode(raw).decode(), raw.hex(), body[:24]]


def test_the_key_command_writes_a_private_file_prints_the_public_half_and_refuses_to_overwrite(
        key_file, capsys):
    call_command("agent_release_key")
    public = capsys.readouterr().out.strip()
    assert len(base64.b64decode(public)) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    before = key_file.read_bytes()
    with pytest.raises(CommandError, match="exists already.*--force"):
        call_command("agent_release_key")
    assert key_file.read_bytes() == before
    call_command("agent_release_key", "--show")
    assert capsys.readouterr().out.strip() == public
    call_command("agent_release_key", "--force")
    assert capsys.readouterr().out.strip() != public


def test_publish_agent_signs_and_registers_a_given_wheel(public_key, tmp_path, capsys):
    wheel = tmp_path / "relay_agent-9.9.9-py3-none-any.whl"
    wheel.write_bytes(make_wheel())
    call_command("publish_agent", "--wheel", str(wheel))
    release = AgentRelease.objects.get(version="9.9.9")
    assert release.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert release_key.verify(public_key, release.signature, "9.9.9", release.sha256)
    assert not release_key.verify(public_key, release.signature, "9.9.10", release.sha256)
    assert releases.read_wheel(release) == wheel.read_bytes()
    with pytest.raises(CommandError, match="exists already"):
        call_command("publish_agent", "--wheel", str(wheel))
    other = tmp_path / "x.whl"
    other.write_bytes(make_wheel(name="something-else"))
    with pytest.raises(CommandError, match="not relay-agent"):
        call_command("publish_agent", "--wheel", str(other))


def test_without_a_key_nothing_is_published(key_file, tmp_path):
    wheel = tmp_path / "relay_agent-9.9.9-py3-none-any.whl"
    wheel.write_bytes(make_wheel())
    with pytest.raises(CommandError, match="no agent release key"):
        call_command("publish_agent", "--wheel", str(wheel))
    assert not AgentRelease.objects.exists()


def test_the_admin_uploads_signs_and_lists_releases_with_versions_and_never_the_private_key(
        public_key, key_file, admin_client_, issued):
    from django.core.files.uploadedfile import SimpleUploadedFile
    upload = SimpleUploadedFile("relay_agent-9.9.9-py3-none-any.whl", make_wheel())
    response = admin_client_.post("/admin/agentupdates/agentrelease/add/", {"upload": upload})
    assert response.status_code == 302, response.content.decode()[:3000]
    release = AgentRelease.objects.get()
    assert release_key.verify(public_key, release.signature, "9.9.9", release.sha256)
    issued.relay.status.version = "0.1.0"
    issued.relay.status.save()
    page = admin_client_.get("/admin/agentupdates/agentrelease/").content.decode()
    assert release.sha256 in page and public_key in page and "Agent versions on the fleet" in page
    assert "0.1.0" in page
    detail = admin_client_.get(f"/admin/agentupdates/agentrelease/{release.pk}/change/").content.decode()
    bad = admin_client_.post("/admin/agentupdates/agentrelease/add/", {
        "upload": SimpleUploadedFile("relay_agent-9.9.9-py3-none-any.whl", make_wheel())}).content.decode()
    assert "exists already" in bad
    for text in (page, detail, bad):
        for marker in private_markers(key_file):
            assert marker not in text


def test_relays_download_a_release_with_their_key_only_and_learn_the_public_key_on_verify(
        public_key, key_file, issued, tmp_path):
    data = make_wheel()
    releases.register(data, "relay_agent-9.9.9-py3-none-any.whl")
    client = client_for(issued)
    response = client.get("/relay/agent-releases/9.9.9/wheel")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert client.get("/relay/agent-releases/1.2.3/wheel").status_code == 404
    from rest_framework.test import APIClient
    anonymous = APIClient()
    assert anonymous.get("/relay/agent-releases/9.9.9/wheel").status_code == 401
    anonymous.credentials(HTTP_X_API_KEY="rly_nope_nope")
    assert anonymous.get("/relay/agent-releases/9.9.9/wheel/").status_code == 401
    verified = APIClient().post("/relay/verify", {"apiKey": issued.api_key}, format="json")
    assert verified.json()["agentReleasePublicKey"] == public_key
    for marker in private_markers(key_file):
        assert marker not in verified.content.decode()
