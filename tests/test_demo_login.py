"""`make run` shows the admin login last, once the hub, worker and beat are up, and keeps it in var/admin-login.txt."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from relayhub.management.commands import demo_login


@pytest.fixture
def var(settings, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def bootstrap(*args: str) -> str:
    out = io.StringIO()
    call_command("bootstrap_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_login_goes_to_a_private_file_not_to_the_output(var: Path) -> None:
    output = bootstrap("--port", "8123")

    password = (var / "admin-password").read_text().strip()
    login = (var / "admin-login.txt").read_text()
    assert login == f"Admin:     http://127.0.0.1:8123/admin/\nUser:      admin\nPassword:  {password}\n"
    assert stat.S_IMODE((var / "admin-login.txt").stat().st_mode) == 0o600
    assert password not in output
    assert f"Admin login: in {var / 'admin-login.txt'}" in output


@pytest.mark.django_db
def test_the_port_follows_relayhub_port_and_show_login_prints_it(var: Path, monkeypatch) -> None:
    monkeypatch.setenv("RELAYHUB_PORT", "8200")

    output = bootstrap("--show-login")

    assert "http://127.0.0.1:8200/admin/" in output
    assert (var / "admin-password").read_text().strip() in output


def test_hub_answers_only_for_a_relayhub(live_server) -> None:
    port = int(live_server.url.rsplit(":", 1)[1])
    assert demo_login.hub_answers(port)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert not demo_login.hub_answers(closed)


def test_beat_running_reads_a_live_pid(tmp_path: Path) -> None:
    pidfile = tmp_path / "celerybeat.pid"
    assert not demo_login.beat_running(pidfile)
    pidfile.write_text(f"{os.getpid()}\n")
    assert demo_login.beat_running(pidfile)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pidfile.write_text(ended.stdout)
    assert not demo_login.beat_running(pidfile)


@pytest.mark.django_db
def test_the_block_is_printed_once_everything_answers(var: Path, monkeypatch) -> None:
    bootstrap("--port", "8123")
    asked: list[str] = []
    monkeypatch.setattr(demo_login, "hub_answers", lambda port: asked.append(f"hub:{port}") or True)
    monkeypatch.setattr(demo_login, "worker_answers", lambda: asked.append("worker") or True)
    monkeypatch.setattr(demo_login, "beat_running", lambda pidfile: asked.append(pidfile.name) or True)
    out = io.StringIO()

    demo_login.Command(stdout=out)._show(8123, timeout=5, settle=0)

    assert asked == ["hub:8123", "worker", "celerybeat.pid"]
    block = out.getvalue()
    assert "relayhub is up on http://127.0.0.1:8123/" in block
    assert (var / "admin-password").read_text().strip() in block
    assert block.count("=" * 66) == 2


@pytest.mark.django_db
def test_what_is_not_up_is_named_and_no_password_is_shown(var: Path, monkeypatch) -> None:
    bootstrap()
    monkeypatch.setattr(demo_login, "hub_answers", lambda port: True)
    monkeypatch.setattr(demo_login, "worker_answers", lambda: False)
    monkeypatch.setattr(demo_login, "beat_running", lambda pidfile: True)
    out, err = io.StringIO(), io.StringIO()

    demo_login.Command(stdout=out, stderr=err)._show(8000, timeout=0.1, settle=0)

    assert out.getvalue() == ""
    assert "Not up after 0 s: the Celery worker. The admin login is in" in err.getvalue()
    assert (var / "admin-password").read_text().strip() not in err.getvalue()
