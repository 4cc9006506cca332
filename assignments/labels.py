"""``key=value`` labels on relays and SSH targets, and the selectors that pick them.

The syntax is that of Kubernetes label selectors: requirements joined by commas,
all of which must hold::

    env=prod            env==prod          env!=prod
    role in (web,api)   role notin (db)    canary      !canary

A key is an optional DNS-style prefix and a slash, then a name of at most 63
letters, digits, ``-``, ``_`` or ``.`` beginning and ending alphanumeric; a
value is empty or a name of the same form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
PREFIX = r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?"
KEY_RE = re.compile(rf"(?:{PREFIX}/)?{NAME}", re.ASCII)
VALUE_RE = re.compile(rf"(?:{NAME})?", re.ASCII)
MAX_LABELS = 64
MAX_SELECTOR = 4096

_TOKEN_RE = re.compile(r"\s*(?:(?P<op>==|!=|=|\(|\)|,|!)|(?P<word>[^\s=!(),]+))", re.ASCII)


class LabelError(ValueError):
    """A malformed label or selector; the message says where and why."""


def check_key(key: str) -> str:
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise LabelError(f"invalid label key {key!r}: use letters, digits, '-', '_' and '.', at most 63, "
                         "beginning and ending with a letter or digit, optionally after a 'prefix/'")
    return key


def check_value(key: str, value: object) -> str:
    if not isinstance(value, str) or not VALUE_RE.fullmatch(value):
        raise LabelError(f"invalid value {value!r} for label {key!r}: empty, or at most 63 letters, digits, "
                         "'-', '_' and '.', beginning and ending with a letter or digit")
    return value


def clean_labels(labels: object) -> dict[str, str]:
    """Labels as given in JSON (an object) or text (``k=v`` separated by commas or new lines)."""
    if isinstance(labels, str):
        labels = parse_label_text(labels)
    if not isinstance(labels, Mapping):
        raise LabelError("labels must be an object of key: value strings")
    if len(labels) > MAX_LABELS:
        raise LabelError(f"at most {MAX_LABELS} labels")
    return {check_key(key): check_value(key, value) for key, value in sorted(labels.items())}


def validate_labels(value: object) -> None:
    """A model field validator: Django's ValidationError with the same message."""
    from django.core.exceptions import ValidationError

    try:
        clean_labels(value)
    except LabelError as exc:
        raise ValidationError(str(exc)) from None


def parse_label_text(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in re.split(r"[,\n]", text):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise LabelError(f"label {item!r} must be written key=value")
        key, value = key.strip(), value.strip()
        if key in labels:
            raise LabelError(f"label {key!r} is given twice")
        labels[check_key(key)] = check_value(key, value)
    return labels


def format_labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "exists":
            return self.key in labels
        if self.operator == "!exists":
            return self.key not in labels
        if self.operator == "in":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # notin: also true when the key is absent


@dataclass(frozen=True)
class Selector:
    text: str
    requirements: tuple[Requirement, ...]

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def filter(self, items: Iterable, labels_of=lambda item: item.labels) -> list:
        return [item for item in items if self.matches(labels_of(item))]


def parse_selector(text: str) -> Selector:
    """Parse a selector; ``LabelError`` names the position of the first mistake."""
    if not isinstance(text, str):
        raise LabelError("a selector must be a string")
    if len(text) > MAX_SELECTOR:
        raise LabelError(f"a selector has at most {MAX_SELECTOR} characters")
    tokens = _tokenize(text)
    requirements: list[Requirement] = []
    position = 0

    def take(expected: str | None = None) -> tuple[str, str, int]:
        nonlocal position
        if position >= len(tokens):
            raise LabelError(f"selector {text!r} ends early" + (f": expected {expected}" if expected else ""))
        token = tokens[position]
        position += 1
        return token

    def fail(at: int, message: str) -> LabelError:
        return LabelError(f"selector {text!r}, at character {at + 1}: {message}")

    while position < len(tokens):
        kind, value, at = take()
        if kind == "op" and value == "!":
            kind, key, at = take("a label key after '!'")
            if kind != "word":
                raise fail(at, "expected a label key after '!'")
            requirements.append(Requirement(_key(key, at, fail), "!exists"))
        elif kind == "word":
            key = _key(value, at, fail)
            if position >= len(tokens) or tokens[position][1] == ",":
                requirements.append(Requirement(key, "exists"))
            else:
                kind, operator, at = take()
                if operator in ("=", "==", "!="):
                    kind, word, at = tokens[position] if position < len(tokens) else ("op", ",", len(text))
                    label_value = ""
                    if kind == "word":
                        position += 1
                        label_value = _value(key, word, at, fail)
                    requirements.append(Requirement(key, "notin" if operator == "!=" else "in",
                                                    frozenset({label_value})))
                elif operator in ("in", "notin"):
                    requirements.append(Requirement(key, operator, _value_set(key, take, fail)))
                else:
                    raise fail(at, f"expected =, ==, !=, in or notin after {key!r}, found {operator!r}")
        else:
            raise fail(at, f"expected a label key, found {value!r}")
        if position < len(tokens):
            kind, value, at = take()
            if value != ",":
                raise fail(at, f"expected ',' between requirements, found {value!r}")
            if position >= len(tokens):
                raise fail(at, "a selector must not end with ','")
    return Selector(text.strip(), tuple(requirements))


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, index = [], 0
    while index < len(text):
        if text[index:].strip() == "":
            break
        match = _TOKEN_RE.match(text, index)
        if match is None:  # pragma: no cover - the pattern accepts every non-space character
            raise LabelError(f"selector {text!r}, at character {index + 1}: unexpected character")
        kind = "op" if match.group("op") else "word"
        start = match.start(kind)
        tokens.append((kind, match.group(kind), start))
        index = match.end()
    return tokens


def _key(key: str, at: int, fail) -> str:
    try:
        return check_key(key)
    except LabelError as exc:
        raise fail(at, str(exc)) from None


def _value(key: str, value: str, at: int, fail) -> str:
    try:
        return check_value(key, value)
    except LabelError as exc:
        raise fail(at, str(exc)) from None


def _value_set(key: str, take, fail) -> frozenset[str]:
    kind, value, at = take("'('")
    if value != "(":
        raise fail(at, f"expected '(' after 'in' or 'notin', found {value!r}")
    values: set[str] = set()
    while True:
        kind, value, at = take("a value or ')'")
        if kind != "word":
            raise fail(at, f"expected a value, found {value!r}")
        values.add(_value(key, value, at, fail))
        kind, value, at = take("',' or ')'")
        if value == ")":
            return frozenset(values)
        if value != ",":
            raise fail(at, f"expected ',' or ')' in a value list, found {value!r}")
