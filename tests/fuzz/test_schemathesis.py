"""Schemathesis against the OpenAPI schema on a real hub: no 5xx, no response off the schema (SPEC §8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from relayhub.web import operator_tokens
from tests.e2e.processes import BIN, ROOT

MAX_EXAMPLES = os.environ.get("RELAYHUB_FUZZ_EXAMPLES", "15")
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


def fuzz(schema: Path, base_url: str, header: str, paths: str, tmp_path: Path) -> subprocess.CompletedProcess:
    argv = [str(BIN / "schemathesis"), "run", str(schema), "--url", base_url, "-H", header,
            "--include-path-regex", paths, "--checks", CHECKS, "--max-examples", MAX_EXAMPLES, "--seed", "20261122",
            "--phases", "examples,coverage,fuzzing", "--request-timeout", "20", "--workers", "1",
            "--suppress-health-check", "all", "--report-dir", str(tmp_path / "reports")]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"})


@pytest.fixture
def schema(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(path))
    return path


@pytest.fixture
def fuzz_hub(start_hub):
    # Fuzzing sends many requests per second: lift the rate limits for this run only.
    return start_hub(env={"RELAYHUB_OPERATOR_RATE": "100000/min", "RELAYHUB_RELAY_RATE": "100000/min",
                          "RELAYHUB_VERIFY_RATE": "100000/min", "RELAYHUB_FAILED_AUTH_RATE": "100000/min",
                          "RELAYHUB_LONGPOLL_MAX_MS": "200"})


def test_operator_api(fuzz_hub, schema, tmp_path):
    user = User.objects.create_superuser("fuzzer", "f@example.com", "pw-fuzz-123456")
    token = operator_tokens.issue(user)
    result = fuzz(schema, fuzz_hub.url, f"Authorization: Token {token}", "^/api/", tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "/api/v1/commands/" in result.stdout


def test_relay_api(fuzz_hub, schema, e2e_relay, tmp_path):
    result = fuzz(schema, fuzz_hub.url, f"X-API-Key: {e2e_relay.api_key}", "^/relay/", tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "/relay/commands/claim/" in result.stdout
    assert e2e_relay.api_key not in result.stdout
