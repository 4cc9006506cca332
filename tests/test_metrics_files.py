"""The multiprocess directory: readied on start by relayhub.serve, dead processes' live gauges dropped when scraped."""

from __future__ import annotations

import os
import subprocess

import pytest

from relayhub import serve
from relayhub.web import metrics, metrics_files


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    assert not metrics_files.process_alive(process.pid)
    return process.pid


def touch(directory, *names: str) -> None:
    for name in names:
        (directory / name).write_bytes(b"")


def test_start_removes_what_dead_processes_counted_and_keeps_the_living(tmp_path, monkeypatch, dead_pid):
    directory = tmp_path / "metrics"
    directory.mkdir()
    alive = os.getpid()  # e.g. a Celery worker sharing the directory
    touch(directory, f"counter_{dead_pid}.db", f"histogram_{dead_pid}.db", f"gauge_livesum_{dead_pid}.db",
          f"counter_{alive}.db", f"gauge_livesum_{alive}.db", "notes.txt")
    monkeypatch.setenv(metrics_files.VARIABLE, str(directory))
    assert serve.prepare_directory() is None  # not made: not to be removed at exit
    assert sorted(path.name for path in directory.iterdir()) == [
        f"counter_{alive}.db", f"gauge_livesum_{alive}.db", "notes.txt"]


def test_start_makes_the_directory_or_a_private_one(tmp_path, monkeypatch):
    wanted = tmp_path / "a" / "metrics"
    monkeypatch.setenv(metrics_files.VARIABLE, str(wanted))
    assert serve.prepare_directory() is None and wanted.is_dir()
    monkeypatch.delenv(metrics_files.VARIABLE)
    made = serve.prepare_directory()
    try:
        assert made and os.environ[metrics_files.VARIABLE] == made
        assert os.stat(made).st_mode & 0o077 == 0
    finally:
        os.rmdir(made)


def test_a_scrape_drops_only_the_live_gauges_of_dead_processes(tmp_path, dead_pid):
    alive = os.getpid()
    touch(tmp_path, f"counter_{dead_pid}.db", f"gauge_livesum_{dead_pid}.db", f"gauge_liveall_{dead_pid}.db",
          f"gauge_livesum_{alive}.db")
    assert metrics.reap_dead(str(tmp_path)) == [dead_pid]
    # A dead worker's counts stay in the sum; what it held now is gone with it.
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"counter_{dead_pid}.db", f"gauge_livesum_{alive}.db"]


def test_route_labels_are_patterns_as_people_read_them():
    assert metrics.route_label("api/v1/commands/(?P<pk>[^/.]+)/cancel/$") == "api/v1/commands/<pk>/cancel/"
    assert metrics.route_label("^relay/commands/next/?$") == "relay/commands/next"
    assert metrics.route_label("admin/(?P<url>.*)$") == "admin/<url>"
    assert metrics.route_label(None) == metrics.UNMATCHED
    assert metrics.route_label("") == "/"  # the root's redirect
