import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from assignments import keys
from assignments.models import RelayAssignment

ROOT = Path(__file__).resolve().parent.parent


def test_issue_relay_key_json_prints_exactly_one_line(db):
    out, err = StringIO(), StringIO()
    call_command("issue_relay_key", "--machine-id", "m-1", "--name", "edge", "--json", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert set(data) == {"assignmentId", "machineId", "name", "apiKey", "transportSecret"}
    relay = RelayAssignment.objects.get(pk=data["assignmentId"])
    assert (relay.machine_id, relay.name) == ("m-1", "edge")
    assert keys.parse(data["apiKey"]).lookup == relay.api_key.lookup
    assert data["transportSecret"] == relay.transport_secret()
    assert data["apiKey"] not in err.getvalue()


def test_revoke_relay_key(issued):
    out = StringIO()
    call_command("revoke_relay_key", str(issued.relay.pk), stdout=out)
    issued.relay.api_key.refresh_from_db()
    assert issued.relay.api_key.is_revoked
    assert issued.api_key not in out.getvalue()


def test_revoke_by_machine_and_name(issued):
    call_command("revoke_relay_key", "--machine-id", "machine-1", "--name", "relay-1", stdout=StringIO())
    issued.relay.api_key.refresh_from_db()
    assert issued.relay.api_key.is_revoked


@pytest.mark.parametrize("args", [[], ["not-a-uuid"], ["--machine-id", "nope", "--name", "nope"]])
def test_revoke_needs_an_existing_relay(db, args):
    with pytest.raises(CommandError):
        call_command("revoke_relay_key", *args, stdout=StringIO())


def test_production_settings_pass_check_deploy(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "relayhub.settings_production",
        "SECRET_KEY": "x" * 20 + "production-secret-key-with-enough-entropy-0123456789",
        "CREDENTIAL_KEYS": "k1:" + "A" * 43 + "=",
        "TRANSPORT_KEYS": "t1:" + "B" * 43 + "=",
        "ALLOWED_HOSTS": "hub.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_development_secrets(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "relayhub.settings_production",
           "SECRET_KEY": "django-insecure-relayhub-development-only", "CREDENTIAL_KEYS": "k1:" + "A" * 43 + "=",
           "TRANSPORT_KEYS": "t1:" + "B" * 43 + "=", "ALLOWED_HOSTS": "hub.example.com",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY must not use the development default" in result.stderr
