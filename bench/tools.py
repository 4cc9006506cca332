"""bench/.venv: ansible-core (the fan-out baseline) and the profilers, kept out of the project venv."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements-tools.txt"
BIN = VENV / "bin"


def ensure_tools() -> Path:
    """Create or refresh bench/.venv when requirements-tools.txt changed; returns its bin dir."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".bench-tools-stamp"
    if stamp.exists() and stamp.read_text() == digest and (BIN / "ansible").exists():
        return BIN
    print("bench: installing ansible-core, py-spy, pyinstrument into bench/.venv", flush=True)
    if not (BIN / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                    str(REQUIREMENTS)], check=True)
    stamp.write_text(digest)
    return BIN


def ansible(tools_bin: Path | None) -> str | None:
    """The `ansible` the fan-out compares with: bench/.venv's, else the system's (e.g. Debian's ansible-core)."""
    if tools_bin is not None and (tools_bin / "ansible").exists():
        return str(tools_bin / "ansible")
    return shutil.which("ansible")
