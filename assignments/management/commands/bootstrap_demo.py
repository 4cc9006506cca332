"""Prepare a local demo: an admin login and one relay key, both kept under var/."""

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from assignments.models import RelayAssignment

DEMO_MACHINE = "local"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class Command(BaseCommand):
    help = "Create the demo admin and relay key once (under var/), and print the admin login."

    def handle(self, *args, **options) -> None:
        var = settings.VAR_DIR
        self._admin(var / "admin-password")
        self._relay(var / "demo-relay.json")

    def _admin(self, password_file: Path) -> None:
        users = get_user_model().objects
        user = users.filter(username="admin").first()
        if user is None:
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", "admin@localhost", password)
            _write_private(password_file, password)
        password = password_file.read_text().strip() if password_file.exists() else ""
        if not password or not users.get(username="admin").check_password(password):
            password = "(changed by you; `manage.py changepassword admin` resets it)"
        self.stdout.write(f"Admin:  http://127.0.0.1:8000/admin/  user: admin  password: {password}")

    def _relay(self, key_file: Path) -> None:
        if key_file.exists():
            relay_id = json.loads(key_file.read_text())["assignmentId"]
            if RelayAssignment.objects.filter(pk=relay_id, api_key__revoked_at=None).exists():
                self.stdout.write(f"Demo relay: machine '{DEMO_MACHINE}', key in {key_file}")
                return
        issued = RelayAssignment.issue(machine_id=DEMO_MACHINE, name="demo relay")
        _write_private(key_file, json.dumps(issued.as_json()))
        self.stdout.write(f"Demo relay: machine '{DEMO_MACHINE}', key issued into {key_file}")
