"""``demo_login --port N``: `make run`'s last word. Once the hub, the worker and beat are up, show the admin login.

It runs as a Procfile process beside them, so the login is printed after their banners instead of
scrolling away under them; then it waits quietly, since honcho stops everything when one process ends.
The login comes from var/admin-login.txt (written by ``bootstrap_demo``); no other log carries it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from relayhub.celery import app as celery_app

LOGIN_FILE = "admin-login.txt"
BEAT_PIDFILE = "celerybeat.pid"  # the Procfile starts beat with --pidfile var/celerybeat.pid
RULE = "=" * 66


def hub_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/relay/hello", timeout=2) as response:  # nosec B310
            return json.loads(response.read()).get("service") == "relayhub"
    except (OSError, ValueError, AttributeError):
        return False


def worker_answers() -> bool:
    try:
        return bool(celery_app.control.ping(timeout=1.0))
    except Exception:  # noqa: BLE001 - a broker not there yet: not up
        return False


def beat_running(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def login_block(login: str, port: int) -> str:
    lines = ["", RULE, f"  relayhub is up on http://127.0.0.1:{port}/ (hub, worker, beat)", ""]
    lines += [f"  {line}" for line in login.splitlines()]
    lines += ["", f"  Also in {Path(settings.VAR_DIR) / LOGIN_FILE}. Ctrl-C stops everything.", RULE, ""]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Wait for the hub, the Celery worker and beat, then print the demo admin login (for make run)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001 - argparse
        parser.add_argument("--port", type=int, default=int(os.environ.get("RELAYHUB_PORT") or 8000))
        parser.add_argument("--timeout", type=float, default=180.0, help="give up waiting after this many seconds")
        parser.add_argument("--settle", type=float, default=1.0, help="seconds for the last banners to be written")

    def handle(self, *args, port: int, timeout: float, settle: float, **options) -> None:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            self._show(port, timeout, settle)
            while True:  # honcho stops every process when one ends
                time.sleep(3600)
        except KeyboardInterrupt:
            pass

    def _show(self, port: int, timeout: float, settle: float) -> None:
        var = Path(settings.VAR_DIR)
        checks: dict[str, Callable[[], bool]] = {
            "the hub": lambda: hub_answers(port),
            "the Celery worker": worker_answers,
            "Celery beat": lambda: beat_running(var / BEAT_PIDFILE),
        }
        deadline = time.monotonic() + timeout
        waiting = list(checks)
        while waiting and time.monotonic() < deadline:
            waiting = [name for name in waiting if not checks[name]()]
            if waiting:
                time.sleep(0.5)
        if waiting:
            self.stderr.write(
                f"Not up after {timeout:.0f} s: {', '.join(waiting)}. The admin login is in {var / LOGIN_FILE}."
            )
            return
        time.sleep(settle)
        try:
            login = (var / LOGIN_FILE).read_text()
        except OSError as exc:
            self.stderr.write(f"No admin login to show ({exc.strerror}): run `manage.py bootstrap_demo`.")
            return
        self.stdout.write(login_block(login, port))
        self.stdout.flush()
