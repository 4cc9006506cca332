"""Typed template parameters: their definitions, and the values of a launch as environment variables.

A value never becomes shell text. Each parameter reaches the command as ``RELAYHUB_PARAM_<NAME>``
(and under the extra name the template declares, if any), the way SSM's ENV_VAR interpolation
closed its injection hole. A secret parameter takes no value at launch: it names a shared
credential, whose value the relay gets and the output never shows (commands.secrets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

TYPES = ("string", "integer", "choice", "boolean", "secret")
NAME = re.compile(r"[a-z][a-z0-9_]{0,40}\Z")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_PARAMETERS = 50
MAX_VALUE = 4096
MASK = "********"
KEYS = {"name", "type", "label", "help", "required", "default", "pattern", "min", "max", "choices", "credential",
        "env"}


def env_name(name: str) -> str:
    return f"RELAYHUB_PARAM_{name.upper()}"


def check_definitions(definitions: Any) -> list[dict]:
    """The template's parameter list, checked; ValidationError naming the parameter otherwise."""
    if not isinstance(definitions, list) or len(definitions) > MAX_PARAMETERS:
        raise ValidationError(f"parameters must be a list of at most {MAX_PARAMETERS}")
    seen: set[str] = set()
    for index, item in enumerate(definitions):
        where = f"parameters[{index}]"
        if not isinstance(item, dict):
            raise ValidationError(f"{where} must be an object")
        if unknown := sorted(set(item) - KEYS):
            raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)}")
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise ValidationError(f"{where}: name must be lower case letters, digits and '_', starting with a letter")
        if name in seen:
            raise ValidationError(f"{where}: {name!r} comes twice")
        seen.add(name)
        where = f"parameter {name!r}"
        kind = item.get("type")
        if kind not in TYPES:
            raise ValidationError(f"{where}: type must be one of {', '.join(TYPES)}")
        if "env" in item and (not isinstance(item["env"], str) or not ENV_NAME.match(item["env"])):
            raise ValidationError(f"{where}: env must be an environment variable name")
        _check_kind(item, kind, where)
        if "default" in item and kind != "secret":
            try:
                _value(item, item["default"])
            except ValueError as exc:
                raise ValidationError(f"{where}: the default {exc}") from None
    return definitions


def _check_kind(item: dict, kind: str, where: str) -> None:
    if kind == "string" and "pattern" in item:
        try:
            re.compile(item["pattern"])
        except (re.error, TypeError) as exc:
            raise ValidationError(f"{where}: pattern is not a regular expression ({exc})") from None
    if kind == "integer":
        for bound in ("min", "max"):
            if bound in item and (isinstance(item[bound], bool) or not isinstance(item[bound], int)):
                raise ValidationError(f"{where}: {bound} must be an integer")
    if kind == "choice":
        choices = item.get("choices")
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) and c for c in choices):
            raise ValidationError(f"{where}: choices must be a non-empty list of strings")
    if kind == "secret":
        if not isinstance(item.get("credential"), str) or not item["credential"]:
            raise ValidationError(f"{where}: a secret names the shared credential it is taken from (credential)")
        if "default" in item:
            raise ValidationError(f"{where}: a secret has no default; its value is the credential's")
    elif "credential" in item:
        raise ValidationError(f"{where}: only a secret takes a credential")


def _value(item: dict, raw: Any) -> str:
    """The value as the environment gets it; ValueError saying what is wrong."""
    kind = item["type"]
    if kind == "boolean":
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower()
        raise ValueError("must be true or false")
    if kind == "integer":
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise ValueError("must be a whole number")
        try:
            number = int(raw) if isinstance(raw, int) else int(raw.strip(), 10)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if "min" in item and number < item["min"]:
            raise ValueError(f"must be at least {item['min']}")
        if "max" in item and number > item["max"]:
            raise ValueError(f"must be at most {item['max']}")
        return str(number)
    if not isinstance(raw, str):
        raise ValueError("must be text")
    if "\0" in raw or len(raw) > MAX_VALUE:
        raise ValueError(f"must be text of at most {MAX_VALUE} characters, without NUL")
    if kind == "choice" and raw not in item["choices"]:
        raise ValueError(f"must be one of {', '.join(item['choices'])}")
    if kind == "string" and "pattern" in item and not re.fullmatch(item["pattern"], raw):
        raise ValueError(f"must match {item['pattern']}")
    return raw


@dataclass
class Rendered:
    environment: dict[str, str] = field(default_factory=dict)
    secret_environment: dict[str, str] = field(default_factory=dict)
    shown: dict[str, str] = field(default_factory=dict)  # what pages and records show: secrets masked


def render(definitions: list[dict], values: Any) -> Rendered:
    """The launch's parameter values as environment variables; ValidationError({"parameters": {name: ...}})."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValidationError({"parameters": "must be an object of parameter name to value"})
    known = {item["name"]: item for item in definitions}
    errors: dict[str, str] = {str(name)[:100]: "no such parameter" for name in values if name not in known}
    rendered = Rendered()
    for name, item in known.items():
        names = [env_name(name), *([item["env"]] if item.get("env") else [])]
        if item["type"] == "secret":
            if name in values:
                errors[name] = "a secret is taken from its credential, not given"
            rendered.secret_environment.update(dict.fromkeys(names, item["credential"]))
            rendered.shown[name] = MASK
            continue
        raw = values.get(name, item.get("default"))
        if raw is None or raw == "":
            if item.get("required"):
                errors[name] = "is required"
                continue
            value = "false" if item["type"] == "boolean" else ""
        else:
            try:
                value = _value(item, raw)
            except ValueError as exc:
                errors[name] = str(exc)
                continue
        rendered.environment.update(dict.fromkeys(names, value))
        rendered.shown[name] = value
    if errors:
        raise ValidationError({"parameters": [f"{name}: {problem}" for name, problem in errors.items()]})
    return rendered
