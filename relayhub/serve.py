"""``python -m relayhub.serve [uvicorn options]``: uvicorn serving the hub, with its metrics directory ready.

It takes every uvicorn option (``--workers 4 --host 0.0.0.0 --port 8000``) and
serves ``relayhub.asgi:application``. Before uvicorn starts its workers it
readies ``PROMETHEUS_MULTIPROC_DIR``, where each worker keeps its counts and
``/metrics`` adds them up (``relayhub.web.metrics``):

- set: made if missing, and emptied of the files of processes that no longer
  run, so that counters start from zero with the server. Files of processes
  still running (a Celery worker given the same directory) are kept.
- unset: a fresh private directory, removed when the server stops.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile

from relayhub.web import metrics_files

APPLICATION = "relayhub.asgi:application"


def prepare_directory() -> str | None:
    """Ready the directory; answers the one it made, which the caller removes after."""
    directory = os.environ.get(metrics_files.VARIABLE)
    if not directory:
        made = tempfile.mkdtemp(prefix="relayhub-metrics-")
        os.environ[metrics_files.VARIABLE] = made  # uvicorn's workers inherit it
        return made
    os.makedirs(directory, mode=0o700, exist_ok=True)
    metrics_files.remove_dead(directory)
    return None


class _Stopped(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def main(argv: list[str] | None = None) -> None:
    from uvicorn.main import main as uvicorn_command  # a click command

    made = prepare_directory()
    # One uvicorn process ends by raising the signal that stopped it again, under the handler it found: this one,
    # so that the directory is removed before the process goes the way the signal says.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    stopped_by = None
    try:
        uvicorn_command.main(args=[APPLICATION, *(sys.argv[1:] if argv is None else argv)],
                             prog_name="python -m relayhub.serve")
    except _Stopped as stopped:
        stopped_by = stopped.signum
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)
    if stopped_by is not None:
        signal.signal(stopped_by, signal.SIG_DFL)
        signal.raise_signal(stopped_by)


if __name__ == "__main__":
    main()
