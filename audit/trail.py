"""``record``: write one audit entry, with who, from where, and what, never a secret value.

The address and the source come from the request being served (``ClientAddressMiddleware`` binds it) or,
outside a request, from ``origin`` (relay_exec, beat); the actor is passed by whoever knows it.
"""

from __future__ import annotations

import getpass
import ipaddress
import json
import logging
import logging.handlers
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models

from audit.models import AuditEntry, Source
from relayhub.web import failed_auth

log = logging.getLogger("relayhub.audit")
# Keys whose values are never kept, whatever a caller passes: defence in depth behind each caller's care.
SECRET_KEY_NAME = re.compile(r"secret|password|passwd|token|api_?key|private|value|payload", re.IGNORECASE)
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Origin:
    source: str
    name: str = ""  # who, when no user is at hand: "root (shell)"


_origin: ContextVar[Origin | None] = ContextVar("relayhub_audit_origin", default=None)


@contextmanager
def origin(source: str, name: str = "") -> Iterator[None]:
    """Entries written inside come from ``source`` (relay_exec: ``cli``; beat: ``schedule``)."""
    token = enter_origin(source, name)
    try:
        yield
    finally:
        _origin.reset(token)


def enter_origin(source: str, name: str = "") -> Token:
    """``origin`` for code that cannot wrap a block (a Celery task's start and end); undo with ``leave_origin``."""
    return _origin.set(Origin(source, name))


def leave_origin(token: Token) -> None:
    with suppress(ValueError):  # set in another context: that context ends with it anyway
        _origin.reset(token)


def record(action: str, *, actor: Any = None, obj: models.Model | None = None, object_type: str = "",
           object_id: Any = "", object_repr: str = "", detail: dict | None = None,
           meta: Any = None) -> AuditEntry:
    """Append one entry. ``obj`` names the object (or ``object_type``/``object_id``/``object_repr``); the actor
    is the request's signed-in user unless given."""
    meta = meta if meta is not None else failed_auth.current_meta()
    if actor is None:
        actor = failed_auth.current_user()
    here = _origin.get()
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = obj.pk
        object_repr = object_repr or str(obj)
    user = actor if getattr(actor, "pk", None) is not None else None
    name = getattr(user, "username", "") or (here.name if here else "") or getattr(actor, "username", "")
    if not name and meta is None:  # a program or manage.py: the OS account it runs as
        name = f"{os_user()} (OS user)"
    entry = AuditEntry.objects.create(
        action=action, actor=user, actor_name=name[:200], source=_source(meta, here),
        address=_address(meta),
        object_type=object_type[:40], object_id=str(object_id)[:64], object_repr=str(object_repr)[:200],
        detail=scrub(detail or {}))
    forward(entry)
    return entry


def _address(meta: Any) -> str | None:
    """The client's address, if it is one: a test request, or a proxy's X-Forwarded-For, may say anything."""
    if meta is None:
        return None
    try:
        return str(ipaddress.ip_address(failed_auth.client_address(meta)))
    except ValueError:
        return None


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container)
        return f"uid {os.getuid()}"


def _source(meta: Any, here: Origin | None) -> str:
    if here is not None:
        return here.source
    if meta is None:
        return Source.PYTHON
    path = str(meta.get("PATH_INFO", ""))
    return Source.API if path.startswith("/api/") else Source.ADMIN


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: REDACTED if SECRET_KEY_NAME.search(str(key)) else scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def forward(entry: AuditEntry) -> None:
    """Each entry as one JSON line to syslog, when ``RELAYHUB_AUDIT_SYSLOG`` names where. A syslog that cannot be
    reached never fails the action: the entry is in the database already."""
    try:
        handler = _syslog()
    except OSError as exc:
        logging.getLogger(__name__).warning("audit: syslog %s unreachable: %s", settings.RELAYHUB["AUDIT_SYSLOG"],
                                            exc.strerror or type(exc).__name__)
        _handler.clear()
        return
    if handler is not None:
        log.info(json.dumps(entry.as_record(), default=str, sort_keys=True))


_handler: list[logging.Handler | None] = []


def _syslog() -> logging.Handler | None:
    """The syslog handler, made on first use: ``udp://host:port``, ``tcp://host:port`` or a socket path."""
    target = settings.RELAYHUB.get("AUDIT_SYSLOG", "")
    if _handler and getattr(_handler[0], "relayhub_target", None) == target:
        return _handler[0]
    for old in _handler:
        if old is not None:
            log.removeHandler(old)
            old.close()
    _handler.clear()
    handler = _make_handler(target) if target else None
    _handler.append(handler)
    if handler is not None:
        handler.relayhub_target = target
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False  # syslog only, not the hub's console log too
    return handler


def _make_handler(target: str) -> logging.Handler:
    import socket

    if target.startswith(("udp://", "tcp://")):
        parts = urlsplit(target)
        kind = socket.SOCK_DGRAM if parts.scheme == "udp" else socket.SOCK_STREAM
        handler = logging.handlers.SysLogHandler(address=(parts.hostname, parts.port or 514), socktype=kind,
                                                 facility=logging.handlers.SysLogHandler.LOG_AUTH)
    else:
        handler = logging.handlers.SysLogHandler(address=target, facility=logging.handlers.SysLogHandler.LOG_AUTH)
    handler.ident = "relayhub-audit: "
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
