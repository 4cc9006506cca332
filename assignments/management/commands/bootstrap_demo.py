"""Prepare a local demo: an admin login and one relay key, both kept under var/.

The login (address, user, password) goes to var/admin-login.txt, not to the output: `make run`
shows it once the hub is up (`manage.py demo_login`), so it is not lost among the start-up logs.
"""

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from assignments.models import RelayAssignment
from relayhub.private_files import private_dir, tighten

DEMO_MACHINE = "local"
LOGIN_FILE = "admin-login.txt"


def _write_private(path: Path, text: str) -> None:
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


class Command(BaseCommand):
    help = "Create the demo admin and relay key once (under var/), and write the admin login to var/admin-login.txt."

    def add_arguments(self, parser) -> None:  # noqa: ANN001 - Django's parser
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("RELAYHUB_PORT") or 8000),
            help="the hub's port on 127.0.0.1, for the admin address (default $RELAYHUB_PORT or 8000)",
        )
        parser.add_argument("--show-login", action="store_true", help="also print the login, password included")

    def handle(self, *args, **options) -> None:
        var = private_dir(settings.VAR_DIR)
        # O_CREAT's mode below reaches only new files; these may be older and looser.
        for name in ("admin-password", LOGIN_FILE, "demo-relay.json", "demo-relay.key", "demo-relay.secret"):
            tighten(var / name, 0o600)
        login = self._admin(var / "admin-password", options["port"])
        _write_private(var / LOGIN_FILE, login)
        if options["show_login"]:
            self.stdout.write(login, ending="")
        else:
            self.stdout.write(f"Admin login: in {var / LOGIN_FILE} (`make run` shows it once the hub is up)")
        self._relay(var / "demo-relay.json", var / "demo-relay.key", var / "demo-relay.secret")

    def _admin(self, password_file: Path, port: int) -> str:
        """The login's lines: address, user, password."""
        users = get_user_model().objects
        user = users.filter(username="admin").first()
        if user is None:
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", "admin@localhost", password)
            _write_private(password_file, password)
        password = password_file.read_text().strip() if password_file.exists() else ""
        if not password or not users.get(username="admin").check_password(password):
            password = "(changed by you; `manage.py changepassword admin` resets it)"  # nosec B105 - a message, not a password
        return f"Admin:     http://127.0.0.1:{port}/admin/\nUser:      admin\nPassword:  {password}\n"

    def _relay(self, info_file: Path, key_file: Path, secret_file: Path) -> None:
        if info_file.exists() and key_file.exists():
            relay_id = json.loads(info_file.read_text())["assignmentId"]
            if RelayAssignment.objects.filter(pk=relay_id, api_key__revoked_at=None).exists():
                self.stdout.write(f"Demo relay: machine '{DEMO_MACHINE}' (relay {relay_id})")
                return
        issued = RelayAssignment.issue(machine_id=DEMO_MACHINE, name="demo relay")
        identity = {k: v for k, v in issued.as_json().items() if k not in ("apiKey", "transportSecret")}
        _write_private(key_file, issued.api_key)
        _write_private(secret_file, issued.transport_secret)
        _write_private(info_file, json.dumps(identity))
        self.stdout.write(f"Demo relay: machine '{DEMO_MACHINE}' (relay {issued.relay.pk}), key issued into {key_file}")
