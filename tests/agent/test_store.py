from __future__ import annotations

import stat
from pathlib import Path

import pytest
from relay_agent.store import CredentialStore, CredentialStoreError

SECRET = "s3cret-Value-that-must-never-leak"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("db", "password", SECRET, target_host="10.0.0.5", username="admin")

    cred = CredentialStore(store_dir).get("db")

    assert cred is not None
    assert (cred.name, cred.credential_type, cred.value) == ("db", "password", SECRET)
    assert (cred.target_host, cred.username, cred.storage_mode) == ("10.0.0.5", "admin", "relay_only")
    assert cred.last_updated_at > 1_600_000_000_000


def test_remove(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("a", "api_key", "x1")
    store.put("b", "api_key", "x2")

    assert store.remove("a") is True
    assert store.remove("a") is False
    assert [c.name for c in store.all()] == ["b"]


def test_files_are_private(store_dir: Path) -> None:
    CredentialStore(store_dir).put("db", "password", SECRET)

    assert mode(store_dir) == 0o700
    files = list(store_dir.iterdir())
    assert {f.name for f in files} >= {"credentials.enc", "store.key"}
    for path in files:
        assert mode(path) == 0o600, path.name


def test_an_existing_loose_directory_is_tightened(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)

    CredentialStore(loose)

    assert mode(loose) == 0o700


def test_values_are_not_in_the_files_in_plaintext(store_dir: Path) -> None:
    CredentialStore(store_dir).put("db", "password", SECRET, target_host="db.internal")

    for path in store_dir.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name


def test_a_different_key_cannot_read_the_values(store_dir: Path) -> None:
    CredentialStore(store_dir).put("db", "password", SECRET)
    (store_dir / "store.key").write_bytes(b"k" * 32)

    with pytest.raises(CredentialStoreError, match="cannot decrypt"):
        CredentialStore(store_dir).get("db")


def test_tampered_metadata_is_detected(store_dir: Path) -> None:
    CredentialStore(store_dir).put("db", "password", SECRET, target_host="good.host")
    data = store_dir / "credentials.enc"
    data.write_bytes(data.read_bytes().replace(b"good.host", b"evil.host"))

    with pytest.raises(CredentialStoreError):
        CredentialStore(store_dir).get("db")


def test_inventory_has_metadata_only(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("db", "password", SECRET, target_host="10.0.0.5", username="admin")
    store.put("token", "api_key", SECRET + "2", storage_mode="shared")

    inventory = store.inventory()

    assert [set(item) for item in inventory] == [
        {"credentialName", "credentialType", "targetHost", "storageMode", "lastUpdatedAt"},
        {"credentialName", "credentialType", "storageMode", "lastUpdatedAt"},
    ]
    assert inventory[0]["targetHost"] == "10.0.0.5"
    assert inventory[1]["storageMode"] == "shared"
    assert SECRET not in repr(inventory)
    assert SECRET not in repr(store.get("db"))


def test_storing_the_same_value_keeps_its_timestamp(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    first = store.put("db", "password", SECRET)
    again = store.put("db", "password", SECRET)
    changed = store.put("db", "password", SECRET + "!")

    assert again.last_updated_at == first.last_updated_at
    assert changed.value == SECRET + "!"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "", "credential_type": "password", "value": "x"},
        {"name": "a", "credential_type": "certificate", "value": "x"},
        {"name": "a", "credential_type": "password", "value": ""},
        {"name": "a", "credential_type": "password", "value": "x", "storage_mode": "cloud"},
    ],
)
def test_invalid_entries_are_refused(store_dir: Path, kwargs: dict) -> None:
    with pytest.raises(CredentialStoreError):
        CredentialStore(store_dir).put(**kwargs)


def test_ssh_credentials_are_ranked_most_specific_first(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("host-key", "ssh_key", "k1", target_host="h1")
    store.put("host-pw", "password", "p1", target_host="h1")
    store.put("host-user-key", "ssh_key", "k2", target_host="h1", username="root")
    store.put("port-key", "ssh_key", "k5", target_host="h1:22")
    store.put("other-host", "ssh_key", "k3", target_host="h2")
    store.put("other-user", "ssh_key", "k4", target_host="h1", username="bob")
    store.put("token", "api_key", "t", target_host="h1")

    assert [c.name for c in store.for_ssh("h1", 22, "root")] == ["port-key", "host-user-key", "host-key", "host-pw"]
    assert store.for_ssh("h1", 22, "root")[1].value == "k2"


def test_a_credential_bound_to_nothing_is_offered_to_nothing(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("unbound-key", "ssh_key", "k1")
    store.put("unbound-pw", "password", "p1", username="root")

    assert store.for_ssh("h1", 22, "root") == []
    assert store.for_ssh("h1", 22, None) == []
    assert store.for_ssh("127.0.0.1", 2222, "root") == []


def test_a_binding_without_a_port_covers_every_port_of_its_host_only(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("db", "password", "p", target_host="db.internal")

    assert [c.name for c in store.for_ssh("db.internal", 22, "root")] == ["db"]
    assert [c.name for c in store.for_ssh("DB.Internal", 2222, None)] == ["db"]
    assert store.for_ssh("attacker.example", 22, "root") == []
    assert store.for_ssh("db.internal.attacker.example", 22, "root") == []


def test_a_binding_with_a_port_covers_that_port_only(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("web", "ssh_key", "k", target_host="10.0.0.5:2222")

    assert [c.name for c in store.for_ssh("10.0.0.5", 2222, "deploy")] == ["web"]
    assert store.for_ssh("10.0.0.5", 22, "deploy") == []
    assert store.for_ssh("10.0.0.6", 2222, "deploy") == []


def test_ipv6_bindings_use_brackets_for_a_port(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("v6-port", "ssh_key", "k1", target_host="[2001:db8::1]:2200")
    store.put("v6-any", "ssh_key", "k2", target_host="2001:db8::2")
    store.put("v6-bracketed", "ssh_key", "k3", target_host="[::1]")

    assert [c.name for c in store.for_ssh("2001:db8:0:0:0:0:0:1", 2200, None)] == ["v6-port"]
    assert store.for_ssh("2001:db8::1", 22, None) == []
    assert [c.name for c in store.for_ssh("2001:db8::2", 8022, None)] == ["v6-any"]
    assert [c.name for c in store.for_ssh("::1", 22, None)] == ["v6-bracketed"]


def test_username_binding_still_applies(store_dir: Path) -> None:
    store = CredentialStore(store_dir)
    store.put("bob-key", "ssh_key", "k", target_host="h1", username="bob")

    assert store.for_ssh("h1", 22, "root") == []
    assert [c.name for c in store.for_ssh("h1", 22, "bob")] == ["bob-key"]
    assert [c.name for c in store.for_ssh("h1", 22, None)] == ["bob-key"]


@pytest.mark.parametrize(
    "target_host", ["h1:ssh", "h1:0", "h1:70000", "[::1", "[::1]2200", "user@h1", "a b", ":22", "h1:\u00b2",
                    "h1:\u0662\u0662"])
def test_an_unreadable_ssh_binding_is_refused(store_dir: Path, target_host: str) -> None:
    with pytest.raises(CredentialStoreError, match="target host"):
        CredentialStore(store_dir).put("k", "ssh_key", "v", target_host=target_host)
