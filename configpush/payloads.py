"""Validation of config push payloads, one rule set per push type (SPEC §2)."""

from __future__ import annotations

import re
import shlex
from typing import Any

from django.core.exceptions import ValidationError

HOST_KEY_RE = re.compile(r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( \S.*)?$")
ENCRYPTED_RE = re.compile(r"^[0-9a-f]+:[0-9a-f]{32}:[0-9a-f]*$")
PORT_RE = re.compile(r"[0-9]{1,5}", re.ASCII)
# What the agent refuses in a command while an allow-list is set; an entry holding one could never match.
SHELL_SYNTAX = set(";&|<>()$`\n\r\0")
MAX_ALLOWED_COMMANDS = 1000


def _require_dict(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise ValidationError("payload must be a JSON object")
    return payload


def _only(payload: dict, allowed: set[str]) -> None:
    extra = sorted(set(payload) - allowed)
    if extra:
        raise ValidationError(f"unknown field(s): {', '.join(extra)}")


def _string(payload: dict, name: str, *, required: bool = True) -> str:
    value = payload.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string")
    return value


def _port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValidationError(f"{where}: port must be an integer from 1 to 65535")
    return value


def _target(item: Any, index: int) -> dict:
    where = f"targets[{index}]"
    if isinstance(item, str):
        host, sep, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
        if not host.strip():
            raise ValidationError(f"{where}: host must not be empty")
        if sep and not PORT_RE.fullmatch(port):
            raise ValidationError(f"{where}: port must be a number from 1 to 65535")
        return {"host": host, "port": _port(int(port), where) if sep else 22}
    if not isinstance(item, dict):
        raise ValidationError(f"{where} must be a string or an object with host and port")
    _only(item, {"host", "port", "hostKey"})
    target = {"host": _string(item, "host"), "port": _port(item.get("port", 22), where)}
    host_key = item.get("hostKey")
    if host_key is not None:
        if not isinstance(host_key, str) or not HOST_KEY_RE.match(host_key.strip()):
            raise ValidationError(f"{where}: hostKey must be an OpenSSH public key line, e.g. 'ssh-ed25519 AAAA...'")
        target["hostKey"] = host_key.strip()
    return target


def validate_credential(payload: Any) -> dict:
    payload = _require_dict(payload)
    _only(payload, {"name", "credentialType", "targetHost", "encryptedValue"})
    kind = _string(payload, "credentialType")
    if kind not in {"ssh_key", "password", "api_key"}:
        raise ValidationError("credentialType must be one of ssh_key, password, api_key")
    encrypted = _string(payload, "encryptedValue")
    if not ENCRYPTED_RE.match(encrypted):
        raise ValidationError("encryptedValue must be hex(iv):hex(tag):hex(ciphertext)")
    result = {"name": _string(payload, "name"), "credentialType": kind, "encryptedValue": encrypted}
    if host := _string(payload, "targetHost", required=False):
        result["targetHost"] = host
    return result


def validate_ssh_targets(payload: Any) -> dict:
    payload = _require_dict(payload)
    _only(payload, {"targets"})
    targets = payload.get("targets")
    if not isinstance(targets, list):
        raise ValidationError("targets must be a list")
    return {"targets": [_target(item, index) for index, item in enumerate(targets)]}


def validate_allowed_commands(payload: Any) -> dict:
    payload = _require_dict(payload)
    _only(payload, {"commands"})
    commands = payload.get("commands")
    if not isinstance(commands, list) or not all(isinstance(c, str) and c.strip() for c in commands):
        raise ValidationError("commands must be a list of non-empty strings")
    if len(commands) > MAX_ALLOWED_COMMANDS or any(len(c) > 1000 for c in commands):
        raise ValidationError(f"commands: at most {MAX_ALLOWED_COMMANDS} entries of at most 1000 characters")
    for index, entry in enumerate(commands):
        _allowed_entry(entry, f"commands[{index}]")
    return {"commands": commands}


def _allowed_entry(entry: str, where: str) -> None:
    """An entry is an argument list with ``*``/``?``/``[...]`` patterns per argument, never shell syntax."""
    found = sorted(SHELL_SYNTAX & set(entry))
    if found:
        raise ValidationError(f"{where}: shell syntax {''.join(found)!r} is not allowed; an entry is a command and "
                              "its arguments, where * matches within one argument")
    try:
        shlex.split(entry)
    except ValueError as exc:
        raise ValidationError(f"{where}: {exc}") from None


RUN_AS_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\Z")


def validate_run_as(payload: Any) -> dict:
    """The users commands may run as (through `sudo -n -u`); an empty list allows none."""
    payload = _require_dict(payload)
    _only(payload, {"users"})
    users = payload.get("users")
    if not isinstance(users, list) or len(users) > 100:
        raise ValidationError("users must be a list of at most 100 user names")
    for index, user in enumerate(users):
        if not isinstance(user, str) or not RUN_AS_USER.match(user):
            raise ValidationError(f"users[{index}]: a user name is lower case letters, digits, '_', '.' and '-', "
                                  "at most 32, not starting with a digit or '-'")
    return {"users": list(dict.fromkeys(users))}


def validate_metrics_interval(payload: Any) -> dict:
    payload = _require_dict(payload)
    _only(payload, {"intervalMs"})
    interval = payload.get("intervalMs")
    if isinstance(interval, bool) or not isinstance(interval, int) or not 1_000 <= interval <= 86_400_000:
        raise ValidationError("intervalMs must be an integer from 1000 to 86400000")
    return {"intervalMs": interval}


VALIDATORS = {
    "credential": validate_credential,
    "ssh_targets": validate_ssh_targets,
    "allowed_commands": validate_allowed_commands,
    "metrics_interval": validate_metrics_interval,
    "run_as": validate_run_as,
}


def validate(push_type: str, payload: Any) -> dict:
    try:
        validator = VALIDATORS[push_type]
    except KeyError:
        raise ValidationError(f"unknown push type {push_type!r}") from None
    return validator(payload)
