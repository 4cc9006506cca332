from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .stub_http import stub_server

SECRET_VALUE = "SENTINEL-credential-value-7f3a"


def test_help(run_cli) -> None:
    result = run_cli("--help")

    assert result.returncode == 0
    for text in (
        "API_KEY",
        "HUB_URL",
        "--poll-interval",
        "--heartbeat-interval",
        "--store-dir",
        "--concurrency",
        "--shared-secret",
        "RELAY_API_KEY",
        "credentials add",
    ):
        assert text in result.stdout


def test_version(run_cli) -> None:
    result = run_cli("--version")

    assert result.returncode == 0
    assert result.stdout.strip() == "relay-agent 0.1.0"


def test_missing_key_and_url_is_a_usage_error(run_cli) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}

    result = run_cli(env=env)

    assert result.returncode == 2
    assert "API_KEY and HUB_URL are required" in result.stderr


def test_credentials_add_list_remove(run_cli, store_dir: Path, tmp_path: Path) -> None:
    value_file = tmp_path / "pw"
    value_file.write_text(SECRET_VALUE + "\n")

    added = run_cli(
        "credentials",
        "add",
        "db",
        "--type",
        "password",
        "--target-host",
        "10.0.0.5",
        "--username",
        "admin",
        "--value-file",
        str(value_file),
        "--store-dir",
        str(store_dir),
    )
    from_stdin = run_cli(
        "--store-dir",
        str(store_dir),
        "credentials",
        "add",
        "token",
        "--type",
        "api_key",
        "--value-stdin",
        stdin="tok-" + SECRET_VALUE,
    )
    listed = run_cli("credentials", "list", "--store-dir", str(store_dir))
    as_json = run_cli("credentials", "list", "--json", "--store-dir", str(store_dir))

    assert (added.returncode, from_stdin.returncode, listed.returncode) == (0, 0, 0)
    assert "db" in listed.stdout and "10.0.0.5" in listed.stdout and "token" in listed.stdout
    for output in (added, from_stdin, listed, as_json):
        assert SECRET_VALUE not in output.stdout + output.stderr
    inventory = json.loads(as_json.stdout)
    assert [item["credentialName"] for item in inventory] == ["db", "token"]
    assert set(inventory[0]) == {"credentialName", "credentialType", "targetHost", "storageMode", "lastUpdatedAt"}

    from relay_agent.store import CredentialStore

    store = CredentialStore(store_dir)
    assert store.get("db").value == SECRET_VALUE, "the trailing newline of the file is not part of a password"
    assert store.get("token").value == "tok-" + SECRET_VALUE

    removed = run_cli("credentials", "remove", "db", "--store-dir", str(store_dir))
    again = run_cli("credentials", "remove", "db", "--store-dir", str(store_dir))

    assert removed.returncode == 0
    assert again.returncode == 1 and "no credential named db" in again.stderr
    assert [c.name for c in store.all()] == ["token"]


def test_credentials_honour_relay_store_dir(run_cli, store_dir: Path) -> None:
    env = {**os.environ, "RELAY_STORE_DIR": str(store_dir)}

    run_cli("credentials", "add", "k", "--type", "api_key", "--value-stdin", stdin="v", env=env)

    assert "k" in run_cli("credentials", "list", "--store-dir", str(store_dir)).stdout


def test_credentials_add_needs_a_value_source(run_cli, store_dir: Path) -> None:
    result = run_cli("credentials", "add", "k", "--type", "api_key", "--store-dir", str(store_dir))

    assert result.returncode == 2
    assert "--value-file" in result.stderr


def test_credentials_add_warns_that_an_unbound_ssh_credential_is_offered_to_nothing(run_cli, store_dir: Path) -> None:
    unbound = run_cli("credentials", "add", "pw", "--type", "password", "--value-stdin", "--store-dir", str(store_dir),
                      stdin=SECRET_VALUE)
    bound = run_cli("credentials", "add", "pw2", "--type", "password", "--value-stdin", "--target-host",
                    "[2001:db8::1]:2222", "--store-dir", str(store_dir), stdin=SECRET_VALUE)
    help_text = " ".join(run_cli("credentials", "add", "--help").stdout.split())

    assert unbound.returncode == 0
    assert "pw is bound to no host, so it is offered to no SSH target" in unbound.stderr
    assert bound.returncode == 0 and bound.stderr == ""
    assert "HOST:PORT" in help_text and "to no target at all" in help_text


def test_credentials_add_refuses_an_unreadable_target_host(run_cli, store_dir: Path) -> None:
    result = run_cli("credentials", "add", "pw", "--type", "ssh_key", "--value-stdin", "--target-host", "h:ssh",
                     "--store-dir", str(store_dir), stdin="key")

    assert result.returncode == 1
    assert "invalid port in target host 'h:ssh'" in result.stderr


def without_relay_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_") and k.lower() not in ("no_proxy",)}
    return {**env, **extra}


def reject_key(path: str, body: dict) -> tuple[int, dict]:
    return 401, {"success": False, "error": "invalid api key"}


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://hub.example.com", "hub.example.com"),
        ("http://user:pw@10.0.0.8:8000/", "10.0.0.8"),
        ("http://[2001:db8::1]/", "2001:db8::1"),
        ("http://localhost.attacker.example", "localhost.attacker.example"),
    ],
)
def test_a_plain_http_hub_url_off_this_machine_is_refused(run_cli, url: str, host: str) -> None:
    result = run_cli("rly_key", url, env=without_relay_env())

    assert result.returncode == 2
    assert f"refusing plain http:// hub URL for {host}: use https://, or pass --allow-insecure-http" in result.stderr
    assert "user:pw" not in result.stderr
    assert "relay agent starting" not in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost"])
def test_plain_http_on_loopback_is_accepted(run_cli, host: str, store_dir: Path) -> None:
    with stub_server(reject_key) as (hub, received):
        port = hub.rsplit(":", 1)[1]
        # The stub listens on 127.0.0.1 only; other loopback names reach it through it as a proxy.
        proxy = {} if host == "127.0.0.1" else {"HTTP_PROXY": hub}
        result = run_cli("rly_key", f"http://{host}:{port}", "--store-dir", str(store_dir),
                         env=without_relay_env(**proxy))

    assert result.returncode == 2, result.stderr
    assert "refusing plain http://" not in result.stderr
    assert "hub rejected the api key" in result.stderr
    assert received, "the agent must have talked to the hub"


@pytest.mark.parametrize("how", [("--allow-insecure-http",), ()])
def test_plain_http_off_this_machine_needs_the_explicit_option(run_cli, how: tuple, store_dir: Path) -> None:
    with stub_server(reject_key) as (proxy, received):
        env = without_relay_env(HTTP_PROXY=proxy, **({} if how else {"RELAY_ALLOW_INSECURE_HTTP": "1"}))
        result = run_cli("rly_key", "http://hub.example.test:8000", *how, "--store-dir", str(store_dir), env=env)

    assert "refusing plain http://" not in result.stderr
    assert "hub rejected the api key" in result.stderr
    assert [path for path, _ in received] == ["http://hub.example.test:8000/relay/hello",
                                              "http://hub.example.test:8000/relay/verify"]
