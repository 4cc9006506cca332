"""Registering an agent release: read the wheel's name and version, hash it, sign it, store it."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from email.parser import HeaderParser

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from agentupdates.models import AgentRelease
from audit import trail
from audit.models import Action
from relayhub.relay import release_key

DISTRIBUTION = "relay-agent"
MAX_WHEEL_BYTES = 50 * 1024 * 1024
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}\Z")


class ReleaseError(ValueError):
    pass


def wheel_metadata(data: bytes) -> tuple[str, str]:
    """The distribution name and version a wheel's ``*.dist-info/METADATA`` states."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            names = [name for name in wheel.namelist()
                     if name.count("/") == 1 and name.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise ReleaseError("not a wheel: it has no single *.dist-info/METADATA")
            headers = HeaderParser().parsestr(wheel.read(names[0]).decode("utf-8", "replace"))
    except (zipfile.BadZipFile, OSError):
        raise ReleaseError("not a wheel: not a zip archive") from None
    return headers.get("Name", ""), headers.get("Version", "")


def normal_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def register(data: bytes, filename: str, user=None) -> AgentRelease:
    """Check, sign and store a relay_agent wheel as a release; ReleaseError says why not."""
    if len(data) > MAX_WHEEL_BYTES:
        raise ReleaseError(f"the wheel is larger than {MAX_WHEEL_BYTES} bytes")
    if not filename.endswith(".whl"):
        raise ReleaseError("the file name must end in .whl")
    name, version = wheel_metadata(data)
    if normal_name(name) != DISTRIBUTION:
        raise ReleaseError(f"this wheel is {name!r}, not {DISTRIBUTION}")
    if not VERSION.match(version):
        raise ReleaseError(f"the wheel's version {version[:80]!r} is not one")
    if AgentRelease.objects.filter(version=version).exists():
        raise ReleaseError(f"release {version} exists already: bump the version to publish another")
    digest = hashlib.sha256(data).hexdigest()
    signature = release_key.sign(version, digest)  # ReleaseKeyError when there is no key
    safe_name = re.sub(r"[^A-Za-z0-9._+-]", "_", filename.rsplit("/", 1)[-1])[:150]
    release = AgentRelease(version=version, filename=safe_name, size=len(data), sha256=digest, signature=signature,
                           uploaded_by=user if getattr(user, "pk", None) else None)
    try:
        with transaction.atomic():
            release.wheel.save(f"{version}/{safe_name}", ContentFile(data), save=False)
            release.save()
            trail.record(Action.AGENT_RELEASE, actor=user, obj=release,
                         detail={"version": version, "sha256": digest})
    except IntegrityError:
        release.wheel.delete(save=False)
        raise ReleaseError(f"release {version} exists already") from None
    return release


def read_wheel(release: AgentRelease) -> bytes:
    with release.wheel.open("rb") as handle:
        return handle.read()
