from __future__ import annotations

import json
from pathlib import Path

import pytest
from relay_agent.config import COMMAND_REFUSED, AgentConfig, CommandRefused, ConfigError, SSHTarget
from relay_agent.store import CredentialStore

from relay_agent import transport

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
SECRET = "transport-secret"


@pytest.fixture
def store(store_dir: Path) -> CredentialStore:
    return CredentialStore(store_dir)


@pytest.fixture
def config(store_dir: Path, store: CredentialStore) -> AgentConfig:
    return AgentConfig(store_dir, store, SECRET)


def refusal(config: AgentConfig, command: str) -> str | None:
    try:
        config.authorize_command(command)
    except CommandRefused as exc:
        return str(exc)
    return None


def test_everything_is_allowed_until_a_policy_is_pushed(config: AgentConfig) -> None:
    assert config.authorize_command("rm -rf /tmp/x; echo $HOME") is None, "None: run through sh -c, as it is"
    assert config.check_ssh_target("anywhere", 22) is None


def test_allowed_commands_match_argument_by_argument(config: AgentConfig) -> None:
    config.apply("allowed_commands", json.dumps({"commands": ["uptime", "systemctl status *", "df -[h]"]}))

    assert config.authorize_command("uptime") == ["uptime"]
    assert config.authorize_command("uptime ") == ["uptime"]
    assert config.authorize_command("systemctl status nginx") == ["systemctl", "status", "nginx"]
    assert config.authorize_command("systemctl status 'my unit'") == ["systemctl", "status", "my unit"]
    assert config.authorize_command("df -h") == ["df", "-h"]
    assert refusal(config, "df -k") == f"{COMMAND_REFUSED}: no entry matches"
    assert refusal(config, "systemctl status a b") == f"{COMMAND_REFUSED}: no entry matches"
    assert refusal(config, "systemctl status") == f"{COMMAND_REFUSED}: no entry matches"
    assert refusal(config, "rm -rf /") == (
        "command not allowed by this relay's allowed_commands policy: no entry matches"
    )


def test_an_entry_without_glob_characters_is_not_a_pattern(config: AgentConfig) -> None:
    config.apply("allowed_commands", {"commands": ["ls"]})

    assert config.authorize_command("ls") == ["ls"]
    assert refusal(config, "lsblk") is not None


def test_an_empty_list_refuses_everything(config: AgentConfig) -> None:
    config.apply("allowed_commands", {"commands": []})

    assert refusal(config, "true") == f"{COMMAND_REFUSED}: the list is empty"


def test_entries_saved_before_they_were_checked_can_never_match(store_dir: Path, store: CredentialStore) -> None:
    (store_dir / "config.json").write_text(json.dumps({"allowedCommands": ["echo *; touch x", "uptime"]}))

    config = AgentConfig(store_dir, store, SECRET)

    assert refusal(config, "echo a; touch x") == f"{COMMAND_REFUSED}: shell syntax ';' is not allowed"
    assert refusal(config, "echo a") == f"{COMMAND_REFUSED}: no entry matches"
    assert config.authorize_command("uptime") == ["uptime"]


def test_pushed_config_persists(store_dir: Path, config: AgentConfig, store: CredentialStore) -> None:
    config.apply("allowed_commands", {"commands": ["uptime"]})
    config.apply("ssh_targets", {"targets": [{"host": "h1", "port": 2222, "hostKey": HOST_KEY}]})
    config.apply("metrics_interval", {"intervalMs": 15000})

    reloaded = AgentConfig(store_dir, store, SECRET)

    assert reloaded.allowed_commands == ["uptime"]
    assert reloaded.ssh_targets == [SSHTarget("h1", 2222, HOST_KEY)]
    assert reloaded.metrics_interval_ms == 15000


def test_ssh_targets_accept_objects_and_the_originals_strings(config: AgentConfig) -> None:
    config.apply(
        "ssh_targets",
        {"targets": [{"host": "db1", "port": 22, "hostKey": HOST_KEY + " comment"}, "web1", "web2:2200", "[::1]:2201"]},
    )

    assert config.check_ssh_target("db1", 22) is None
    assert config.check_ssh_target("db1", 2222) == "ssh target db1:2222 not allowed by ssh_targets policy"
    assert config.check_ssh_target("web1", 22) is None
    assert config.check_ssh_target("web1", 8022) is None  # a target without a port allows any port
    assert config.check_ssh_target("web2", 2200) is None
    assert config.check_ssh_target("web2", 22) is not None
    assert config.check_ssh_target("::1", 2201) is None
    assert config.check_ssh_target("db9", 22) is not None
    assert config.pinned_host_keys("db1", 22) == [HOST_KEY]
    assert config.pinned_host_keys("web1", 22) == []


def test_an_empty_target_list_refuses_all_ssh(config: AgentConfig) -> None:
    config.apply("ssh_targets", {"targets": []})

    assert config.check_ssh_target("h1", 22) is not None


def test_metrics_interval(config: AgentConfig) -> None:
    config.apply("metrics_interval", '{"intervalMs": 30000}')

    assert config.metrics_interval_ms == 30000


def test_a_credential_push_is_decrypted_and_stored_as_shared(config: AgentConfig, store: CredentialStore) -> None:
    payload = {
        "name": "prod-ssh",
        "credentialType": "password",
        "targetHost": "10.0.0.9",
        "encryptedValue": transport.encrypt("hunter2", SECRET),
    }

    config.apply("credential", json.dumps(payload))

    cred = store.get("prod-ssh")
    assert cred is not None
    assert (cred.value, cred.credential_type, cred.target_host, cred.storage_mode) == (
        "hunter2",
        "password",
        "10.0.0.9",
        "shared",
    )


@pytest.mark.parametrize(
    ("push_type", "payload", "message"),
    [
        ("allowed_commands", "not json", "not valid JSON"),
        ("allowed_commands", "[1, 2]", "JSON object"),
        ("allowed_commands", {"commands": "uptime"}, "list"),
        ("allowed_commands", {"commands": ["ok", 3]}, "list"),
        ("allowed_commands", {}, "list"),
        ("allowed_commands", {"commands": ["uptime", "systemctl status *; reboot"]}, r"\[1\]: shell syntax ';'"),
        ("allowed_commands", {"commands": ["cat $(ls)"]}, r"\[0\]: shell syntax '\$'"),
        ("allowed_commands", {"commands": ["echo 'unbalanced"]}, "cannot be split into arguments: no closing quot"),
        ("allowed_commands", {"commands": ["  "]}, "empty"),
        ("allowed_commands", {"commands": ["-c *"]}, "cannot start with '-'"),
        ("ssh_targets", {"targets": "h1"}, "list"),
        ("ssh_targets", {"targets": [{"port": 22}]}, "host"),
        ("ssh_targets", {"targets": [{"host": "h", "port": 70000}]}, "port"),
        ("ssh_targets", {"targets": ["h:abc"]}, "port"),
        ("ssh_targets", {"targets": ["h:\u00b2"]}, "port"),
        ("ssh_targets", {"targets": ["h:\u0662\u0662"]}, "port"),
        ("ssh_targets", {"targets": [{"host": "h", "port": "\u0662\u0662"}]}, "port"),
        ("ssh_targets", {"targets": [{"host": "h", "hostKey": "not a key"}]}, "hostKey"),
        ("ssh_targets", {"targets": [{"host": "h", "hostKey": "ssh-rsa " + HOST_KEY.split()[1]}]}, "does not match"),
        ("metrics_interval", {"intervalMs": "fast"}, "integer"),
        ("metrics_interval", {"intervalMs": 10}, "between"),
        ("metrics_interval", {"intervalMs": True}, "integer"),
        ("credential", {"credentialType": "password", "encryptedValue": "x"}, "name"),
        ("credential", {"name": "a", "credentialType": "cert", "encryptedValue": "x"}, "credentialType"),
        ("credential", {"name": "a", "credentialType": "password"}, "encryptedValue"),
        ("credential", {"name": "a", "credentialType": "password", "encryptedValue": "00:11:22"}, "iv or tag"),
        (
            "credential",
            {"name": "a", "credentialType": "password", "encryptedValue": transport.encrypt("x", "other")},
            "wrong shared secret",
        ),
        ("firmware", {}, "unknown push type"),
    ],
)
def test_invalid_payloads_are_rejected_and_change_nothing(
    store_dir: Path, config: AgentConfig, store: CredentialStore, push_type: str, payload, message: str
) -> None:
    config.apply("allowed_commands", {"commands": ["uptime"]})
    config.apply("ssh_targets", {"targets": ["h1"]})
    config.apply("metrics_interval", {"intervalMs": 20000})

    with pytest.raises(ConfigError, match=message):
        config.apply(push_type, payload)

    reloaded = AgentConfig(store_dir, store, SECRET)
    for current in (config, reloaded):
        assert current.allowed_commands == ["uptime"]
        assert current.ssh_targets == [SSHTarget("h1")]
        assert current.metrics_interval_ms == 20000
    assert store.all() == []


def test_a_credential_push_without_a_shared_secret_fails(store_dir: Path, store: CredentialStore) -> None:
    config = AgentConfig(store_dir, store, None)

    with pytest.raises(ConfigError, match="shared secret"):
        config.apply(
            "credential", {"name": "a", "credentialType": "password", "encryptedValue": transport.encrypt("x", "s")}
        )


@pytest.mark.parametrize("text", ["{not json", "[]", '{"allowedCommands": "uptime"}', '{"allowedCommands": [1]}'])
def test_a_corrupt_config_file_fails_closed(
    store_dir: Path, config: AgentConfig, store: CredentialStore, text: str
) -> None:
    config.apply("allowed_commands", {"commands": ["uptime"]})
    (store_dir / "config.json").write_text(text)

    with pytest.raises(ConfigError, match="corrupt"):
        AgentConfig(store_dir, store, SECRET)
