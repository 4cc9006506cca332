"""``check --deploy`` refuses malformed key rings and a wildcard ALLOWED_HOSTS, never printing key material."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given, settings as hypothesis_settings, strategies as st

from assignments.transport import KeyRing
from relayhub.checks import allowed_hosts_problems, key_ring_problems

ROOT = Path(__file__).resolve().parent.parent
SECRET_BYTES = b"sentinel-key-material-0123456789"  # 32 bytes
SECRET = base64.b64encode(SECRET_BYTES).decode()
SHORT = base64.b64encode(SECRET_BYTES[:16]).decode()
LONG = base64.b64encode(SECRET_BYTES + b"!").decode()


def messages(problems: list[checks.CheckMessage]) -> str:
    return "\n".join(f"{problem.msg} {problem.hint}" for problem in problems)


@pytest.mark.parametrize("spec,expected", [
    (f"k1:{SECRET}", []),
    (f" k1:{SECRET} , k2:{SECRET},", []),
    ("", ["holds no key"]),
    (" , ", ["holds no key"]),
    (SECRET, ["entry 1 of 1 has no key id"]),
    (f":{SECRET}", ["entry 1 of 1 has no key id"]),
    (f"k1:{SHORT}", ["entry 1 of 1 decodes to 16 bytes; it must be 32"]),
    (f"k1:{LONG}", ["entry 1 of 1 decodes to 33 bytes"]),
    (f"k1:{SECRET[:-2]}", ["entry 1 of 1 is not valid base64"]),
    (f"k1:{SECRET},k2:not base64!", ["entry 2 of 2 is not valid base64"]),
    (f"k1:{SECRET},k1:{SECRET}", ["entry 2 of 2 repeats the key id of entry 1"]),
])
def test_key_ring_problems(spec, expected):
    problems = key_ring_problems("CREDENTIAL_KEYS", spec, "relayhub.E001")
    assert len(problems) == len(expected)
    for problem, text in zip(problems, expected):
        assert text in problem.msg and problem.id == "relayhub.E001" and problem.is_serious()
    assert SECRET not in messages(problems) and SHORT not in messages(problems)


def test_a_setting_that_is_no_string_is_an_error():
    [problem] = key_ring_problems("TRANSPORT_KEYS", None, "relayhub.E002")
    assert problem.id == "relayhub.E002" and "must be a string" in problem.msg


pieces = st.sampled_from(["k1", "k2", ":", ",", " ", SECRET, SHORT, "=", "AAAA", "!", ""])


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=8).map("".join))
def test_the_check_agrees_with_the_parser_used_at_run_time(spec):
    try:
        KeyRing.parse(spec, "CREDENTIAL_KEYS")
        parses = True
    except ImproperlyConfigured:
        parses = False
    assert parses == (key_ring_problems("CREDENTIAL_KEYS", spec, "relayhub.E001") == [])


def test_a_wildcard_host_is_an_error():
    assert allowed_hosts_problems(["hub.example.com"]) == []
    [problem] = allowed_hosts_problems(["hub.example.com", "*"])
    assert problem.id == "relayhub.E003" and problem.is_serious()


def test_the_key_checks_run_in_every_check(settings):
    settings.TRANSPORT_KEYS = f"t1:{SHORT}"
    found = [message for message in checks.run_checks(tags=[checks.Tags.security]) if message.id.startswith("relayhub.")]
    assert [message.id for message in found] == ["relayhub.E002"]


def check_deploy(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "relayhub.settings_production",
           "SECRET_KEY": "production-secret-key-with-enough-entropy-0123456789-abcdefgh",
           "CREDENTIAL_KEYS": f"k1:{SECRET}", "TRANSPORT_KEYS": "t1:" + "B" * 43 + "=",
           "ALLOWED_HOSTS": "hub.example.com", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           **overrides}
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("overrides,error_id", [
    ({"CREDENTIAL_KEYS": f"k1:{SHORT}"}, "relayhub.E001"),
    ({"CREDENTIAL_KEYS": SECRET}, "relayhub.E001"),
    ({"TRANSPORT_KEYS": f"t1:{SECRET},t1:{SECRET}"}, "relayhub.E002"),
    ({"ALLOWED_HOSTS": "*"}, "relayhub.E003"),
])
def test_check_deploy_fails_under_production_settings(tmp_path, overrides, error_id):
    result = check_deploy(tmp_path, **overrides)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and error_id in output, output
    assert SECRET not in output and SHORT not in output and "Traceback" not in output


@pytest.mark.parametrize("module", ["relayhub.asgi", "relayhub.wsgi"])
def test_a_server_refuses_to_load_the_app_with_a_malformed_key_ring(tmp_path, module):
    """uvicorn or gunicorn run no system checks: loading the application runs the security ones."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "relayhub.settings", "CREDENTIAL_KEYS": f"k1:{SHORT}",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    load = [sys.executable, "-c", f"import {module}"]
    refused = subprocess.run(load, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "relayhub.E001" in refused.stderr, refused.stderr
    assert SHORT not in refused.stderr
    env["CREDENTIAL_KEYS"] = f"k1:{SECRET}"
    loaded = subprocess.run(load, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
