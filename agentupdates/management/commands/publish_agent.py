"""``manage.py publish_agent [--wheel PATH]``: build (or take) a relay_agent wheel, sign it and register it."""

import shutil
import subprocess  # nosec B404 - pip builds the wheel
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agentupdates import releases
from relayhub.relay.release_key import ReleaseKeyError


class Command(BaseCommand):
    help = ("Register a relay_agent release: the wheel given with --wheel, or one built from this repository's "
            "relay_agent/ with pip wheel. It is signed with the agent release key.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--wheel", metavar="PATH", help="a relay_agent wheel to publish instead of building one")
        parser.add_argument("--source", metavar="DIR", default=str(Path(settings.BASE_DIR) / "relay_agent"),
                            help="the relay_agent project to build (default: this repository's)")

    def handle(self, *args, wheel: str | None = None, source: str = "", **options) -> None:
        with tempfile.TemporaryDirectory() as out:
            path = Path(wheel) if wheel else self._build(Path(source), Path(out))
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {path}: {exc.strerror}") from None
            try:
                release = releases.register(data, path.name)
            except (releases.ReleaseError, ReleaseKeyError) as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"published relay-agent {release.version} sha256 {release.sha256}")

    def _build(self, source: Path, out: Path) -> Path:
        if not (source / "pyproject.toml").exists():
            raise CommandError(f"{source} is not the relay_agent project (no pyproject.toml)")
        # Built from a copy: pip builds in the tree it is given, and leaves build/ and *.egg-info there.
        tree = out / "source"
        shutil.copytree(source, tree, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        done = subprocess.run(  # nosec B603 - fixed argv, our own tree
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(tree)],
            capture_output=True, text=True, timeout=600)
        wheels = sorted(out.glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise CommandError(f"pip wheel failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return wheels[0]
