"""``manage.py import_inventory``: SSH targets from Ansible inventories, INI and YAML."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from assignments.models import RelayAssignment
from configpush.models import ConfigPush
from fleet.models import SSHTarget

pytestmark = pytest.mark.django_db(transaction=True)  # pushes follow commits

INI = """\
# a comment
bastion ansible_host=10.0.0.1 ansible_user=admin

[web]
web[01:03] ansible_port=2201
web-special ansible_host=10.0.1.99 ansible_port=2299 ansible_user=root

[db]
db1 ansible_host=10.0.2.1

[web:vars]
ansible_user=deploy
tier=front

[prod:children]
web
db

[prod:vars]
env=prod
ansible_port=2022
"""

YAML = """\
all:
  vars:
    ansible_user: ops
  children:
    edge:
      hosts:
        router-a:
          ansible_host: 192.0.2.10
          ansible_port: 830
        router-b:
          ansible_host: 192.0.2.11
      vars:
        site: lab
    staging:
      children:
        edge:
      vars:
        env: staging
"""


@pytest.fixture
def relay() -> RelayAssignment:
    return RelayAssignment.issue(machine_id="gw-1", name="gateway-1").relay


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_inventory", *args, stdout=out)
    return out.getvalue()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows() -> dict[str, tuple]:
    return {t.name: (t.host, t.port, t.username, t.labels) for t in SSHTarget.objects.all()}


def test_an_ini_inventory_becomes_targets_with_groups_as_labels(tmp_path: Path, relay) -> None:
    out = run(str(write(tmp_path, "hosts", INI)), "--relay", "gateway-1", "--credential", "fleet-key",
              "--label", "source=ansible")

    assert "6 added, 0 changed, 0 unchanged" in out
    found = rows()
    extra = {"source": "ansible"}
    assert found["bastion"] == ("10.0.0.1", 22, "admin", extra)
    # A range, expanded with its zero padding; the host's port beats its groups', the group's user applies.
    for name in ("web01", "web02", "web03"):
        assert found[name] == (name, 2201, "deploy", {"web": "", "prod": "", "tier": "front", "env": "prod", **extra})
    assert found["web-special"] == ("10.0.1.99", 2299, "root",
                                    {"web": "", "prod": "", "tier": "front", "env": "prod", **extra})
    # db1 takes its port from its parent group's vars.
    assert found["db1"] == ("10.0.2.1", 2022, "", {"db": "", "prod": "", "env": "prod", **extra})
    target = SSHTarget.objects.get(name="web01")
    assert target.credential_name == "fleet-key"
    assert [r.pk for r in target.relays.all()] == [relay.pk]
    # The relay is told of its new targets.
    push = ConfigPush.objects.filter(relay=relay, push_type="ssh_targets").latest("pk")
    assert {(t["host"], t["port"]) for t in push.payload["targets"]} == {
        ("10.0.0.1", 22), ("web01", 2201), ("web02", 2201), ("web03", 2201), ("10.0.1.99", 2299), ("10.0.2.1", 2022)}


def test_a_yaml_inventory_becomes_targets(tmp_path: Path, relay) -> None:
    out = run(str(write(tmp_path, "inventory.yml", YAML)), "--relay", str(relay.pk))

    assert "2 added" in out
    assert rows() == {
        "router-a": ("192.0.2.10", 830, "ops", {"edge": "", "staging": "", "site": "lab", "env": "staging"}),
        "router-b": ("192.0.2.11", 22, "ops", {"edge": "", "staging": "", "site": "lab", "env": "staging"}),
    }


def test_a_second_run_changes_nothing_and_a_changed_port_is_reported(tmp_path: Path, relay) -> None:
    path = write(tmp_path, "hosts", INI)
    run(str(path), "--relay", "gateway-1")
    pushes = ConfigPush.objects.count()
    updated = {name: t for name, t in ((t.name, t.updated_at) for t in SSHTarget.objects.all())}

    again = run(str(path), "--relay", "gateway-1")
    assert "0 added, 0 changed, 6 unchanged" in again
    assert {t.name: t.updated_at for t in SSHTarget.objects.all()} == updated
    assert ConfigPush.objects.count() == pushes

    path.write_text(INI.replace("db1 ansible_host=10.0.2.1", "db1 ansible_host=10.0.2.1 ansible_port=2345"))
    changed = run(str(path), "--relay", "gateway-1")
    assert "0 added, 1 changed, 5 unchanged" in changed
    assert "changed db1: port 2022 -> 2345" in changed
    assert SSHTarget.objects.get(name="db1").port == 2345
    assert ConfigPush.objects.filter(relay=relay).latest("pk").payload["targets"].count(
        {"host": "10.0.2.1", "port": 2345}) == 1


def test_a_dry_run_reports_and_writes_nothing(tmp_path: Path, relay) -> None:
    out = run(str(write(tmp_path, "hosts", INI)), "--relay", "gateway-1", "--dry-run")

    assert "would have: 6 added, 0 changed, 0 unchanged" in out
    assert "added web02 (deploy@web02:2201)" in out
    assert not SSHTarget.objects.exists()
    assert not ConfigPush.objects.exists()


@pytest.mark.parametrize(("name", "text", "message"), [
    ("bad.yml", "all:\n  hosts: [unclosed\n", "not valid YAML"),
    ("list.yml", "- just\n- a list\n", "a YAML inventory is a mapping of groups"),
    ("hosts", "[web:vars]\nthis line has no equals sign\n", "line 2: a [web:vars] line must be key=value"),
    ("hosts", "[web]\nweb1 ansible_port=twenty\n", "host 'web1': ansible_port 'twenty' is not a number"),
    ("hosts", "[web]\nweb[05:01]\n", "line 2: bad host range [05:01]"),
    ("hosts", "[web]\nweb1 no_equals_here\n", "line 2: host variables must be key=value"),
])
def test_a_malformed_inventory_is_a_command_error_that_says_where(tmp_path: Path, relay, name, text, message) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(CommandError) as error:
        run(str(path), "--relay", "gateway-1")
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert not SSHTarget.objects.exists()


def test_a_missing_file_is_a_command_error(tmp_path: Path, relay) -> None:
    with pytest.raises(CommandError, match="No such file"):
        run(str(tmp_path / "absent"), "--relay", "gateway-1")


def test_an_unknown_relay_is_a_command_error(tmp_path: Path, relay) -> None:
    path = write(tmp_path, "hosts", INI)
    with pytest.raises(CommandError) as error:
        run(str(path), "--relay", "no-such-relay")
    assert str(error.value) == "--relay 'no-such-relay': no relay has that name or id"
    assert not SSHTarget.objects.exists()
