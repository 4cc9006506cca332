"""Full output: the whole of each stream that went over the cap, kept through Django's storage API.

With ``KEEP_FULL_OUTPUT`` on, a command handed to a relayhub agent carries ``fullOutput`` (``wire_request``).
The agent spools each stream while the command runs and, once it ends, uploads those over the cap to
``POST /relay/commands/full-output`` (``commands.relay_views``), which streams the body into the
``command_output`` storage (``STORAGES``: a private directory by default, S3 through django-storages).
Whoever may see the command downloads it from the admin or the API, streamed. A file lives as long as
its ``FullOutput`` row: deleting the row (or its command) deletes the file once the deletion commits.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import FileResponse
from django.utils import timezone

from commands.models import Command, FullOutput

log = logging.getLogger(__name__)

STORAGE_ALIAS = "command_output"
CHUNK_BYTES = 64 * 1024


def storage() -> Storage:
    return storages[STORAGE_ALIAS]


def enabled() -> bool:
    return bool(settings.RELAYHUB.get("KEEP_FULL_OUTPUT"))


def max_bytes() -> int:
    return int(settings.RELAYHUB["FULL_OUTPUT_MAX_BYTES"])


def wire_request() -> dict | None:
    """``fullOutput`` of a command handed to a relayhub agent: keep each stream longer than ``overBytes``
    (this hub's cap), as long as it stays within ``maxBytes``."""
    if not enabled():
        return None
    return {"maxBytes": max_bytes(), "overBytes": settings.RELAYHUB["OUTPUT_CAP_BYTES"]}


class UploadMismatch(Exception):
    """The body is not what the relay declared: its length or its SHA-256 differs."""


class _Measured(io.RawIOBase):
    """A request body read at most ``length`` bytes far, counted and hashed on the way to the storage."""

    def __init__(self, source, length: int) -> None:  # noqa: ANN001 - an HttpRequest or any file-like object
        super().__init__()
        self._source = source
        self._left = length
        self.size = 0
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        if self._left <= 0:
            return 0
        data = self._source.read(min(len(buffer), self._left, CHUNK_BYTES))
        if not data:
            self._left = 0
            return 0
        buffer[:len(data)] = data
        self._left -= len(data)
        self.size += len(data)
        self.digest.update(data)
        return len(data)


def save(command: Command, stream: str, source, length: int, sha256: str) -> str:  # noqa: ANN001 - file-like
    """Stream ``length`` bytes of ``source`` into the storage; the stored name. ``UploadMismatch`` (and
    nothing stored) when fewer bytes came, or others than the relay hashed."""
    body = _Measured(source, length)
    name = f"commands/{command.pk}/{command.attempt}-{stream}-{secrets.token_hex(8)}.txt"
    name = storage().save(name, File(body, name=name))
    if body.size != length or body.digest.hexdigest() != sha256:
        _remove(name)
        raise UploadMismatch(f"received {body.size} of {length} bytes" if body.size != length
                             else "the body does not match its sha256")
    return name


def record(command: Command, stream: str, name: str, size: int, sha256: str) -> None:
    """Point the command's stream at its stored copy; a copy it replaces is deleted once this commits."""
    with transaction.atomic():
        previous = FullOutput.objects.select_for_update().filter(command=command, stream=stream).first()
        if previous is None:
            FullOutput.objects.create(command=command, stream=stream, name=name, size=size, sha256=sha256,
                                      attempt=command.attempt)
            return
        old_name = previous.name
        previous.name, previous.size, previous.sha256, previous.attempt = name, size, sha256, command.attempt
        previous.save(update_fields=["name", "size", "sha256", "attempt"])
        if old_name != name:
            transaction.on_commit(lambda: _remove(old_name))


def already_stored(command: Command, stream: str, sha256: str) -> bool:
    """The same copy arrived before (a resend whose answer was lost)."""
    return FullOutput.objects.filter(command=command, stream=stream, sha256=sha256, attempt=command.attempt).exists()


def _remove(name: str) -> None:
    try:
        storage().delete(name)
    except Exception:  # the row is gone either way; a file left behind is only disk space
        log.warning("could not delete stored full output %s", name, exc_info=True)


@receiver(post_delete, sender=FullOutput, dispatch_uid="commands.full_output.delete_stored_file")
def delete_stored_file(sender: type, instance: FullOutput, **kwargs: object) -> None:
    """Each row deleted (on its own, with its command, or by the sweep) takes its file with it."""
    name = instance.name
    transaction.on_commit(lambda: _remove(name))


def prune() -> int:
    """Delete the full copies of commands that ended more than ``FULL_OUTPUT_RETENTION_DAYS`` ago."""
    days = settings.RELAYHUB.get("FULL_OUTPUT_RETENTION_DAYS") or 0
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    ids = list(FullOutput.objects.filter(command__completed_at__lt=cutoff)
               .values_list("pk", flat=True)[:settings.RELAYHUB["SWEEP_BATCH"]])
    return FullOutput.objects.filter(pk__in=ids).delete()[0]


def of(command: Command) -> dict[str, FullOutput]:
    """The command's stored copies by stream (from a prefetch when there is one)."""
    return {row.stream: row for row in command.full_outputs.all()}


def size_text(size: int) -> str:
    """1.5 MiB, 12 KiB, 300 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


class StoredFileResponse(FileResponse):
    """A FileResponse that streams under ASGI too: Django would read a synchronous file whole into memory first."""

    block_size = CHUNK_BYTES

    async def __aiter__(self):
        read = sync_to_async(self.file_to_stream.read, thread_sensitive=False)
        while chunk := await read(self.block_size):
            yield chunk


def download(row: FullOutput) -> StoredFileResponse:
    """The stored copy as an attachment, read from the storage as it is sent."""
    response = StoredFileResponse(storage().open(row.name, "rb"), as_attachment=True,
                                  filename=f"command-{row.command_id}-{row.stream}.txt",
                                  content_type="text/plain; charset=utf-8")
    response["Content-Length"] = str(row.size)
    return response
