"""Read an Ansible inventory (INI or YAML) into SSH target fields.

Hosts keep their inventory name; ``ansible_host``, ``ansible_port`` and
``ansible_user`` give the address and login, from the host line or from its
groups' vars (a host's own value wins, then the nearest group's). Every group a
host belongs to, directly or through ``:children``, becomes a label with an
empty value (so ``webservers`` selects the group), and other variables whose
names and values are valid labels become labels too (``env=prod``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assignments.labels import LabelError, check_key, check_value

IMPLICIT_GROUPS = {"all", "ungrouped"}


class InventoryError(ValueError):
    pass


@dataclass
class Group:
    hosts: dict[str, dict] = field(default_factory=dict)
    vars: dict[str, object] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InventoryHost:
    name: str
    host: str
    port: int
    username: str
    labels: dict[str, str]


def load(path: Path) -> list[InventoryHost]:
    text = path.read_text(encoding="utf-8")
    groups = _parse_yaml(text) if path.suffix in (".yml", ".yaml") or _looks_yaml(text) else _parse_ini(text)
    return _flatten(groups)


def _looks_yaml(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", ";"))),
                 "")
    return first.rstrip().endswith(":") and not first.startswith("[")


def _parse_ini(text: str) -> dict[str, Group]:
    groups: dict[str, Group] = {"ungrouped": Group()}
    group, section = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[([^\]:]+)(?::(vars|children))?\]", line)
        if header:
            group, section = header.group(1).strip(), header.group(2) or "hosts"
            groups.setdefault(group, Group())
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"line {number}: {exc}") from None
        if section == "children":
            groups[group].children.append(words[0])
            groups.setdefault(words[0], Group())
        elif section == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise InventoryError(f"line {number}: a [{group}:vars] line must be key=value")
            groups[group].vars[key.strip()] = value.strip().strip("'\"")
        else:
            host_vars = {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    raise InventoryError(f"line {number}: host variables must be key=value, not {word!r}")
                host_vars[key] = value
            for name in _expand(words[0], number):
                groups[group].hosts[name] = host_vars
    return groups


def _expand(pattern: str, number: int) -> list[str]:
    """Ansible's host ranges: ``web[01:03]`` is web01, web02, web03."""
    match = re.search(r"\[([0-9]+):([0-9]+)\]", pattern)
    if not match:
        return [pattern]
    start, end = match.group(1), match.group(2)
    if int(end) < int(start) or int(end) - int(start) > 10_000:
        raise InventoryError(f"line {number}: bad host range {match.group(0)}")
    width = len(start) if start.startswith("0") else 0
    return [name for value in range(int(start), int(end) + 1)
            for name in _expand(pattern[:match.start()] + str(value).zfill(width) + pattern[match.end():], number)]


def _parse_yaml(text: str) -> dict[str, Group]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InventoryError(f"not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise InventoryError("a YAML inventory is a mapping of groups, starting with 'all:'")
    groups: dict[str, Group] = {}

    def visit(name: str, body: object) -> None:
        group = groups.setdefault(name, Group())
        if body is None:
            return
        if not isinstance(body, dict):
            raise InventoryError(f"group {name!r} must be a mapping with hosts, vars or children")
        for host, host_vars in (body.get("hosts") or {}).items():
            if host_vars is not None and not isinstance(host_vars, dict):
                raise InventoryError(f"host {host!r} in group {name!r}: its variables must be a mapping")
            group.hosts[str(host)] = host_vars or {}
        group.vars.update(body.get("vars") or {})
        for child, child_body in (body.get("children") or {}).items():
            group.children.append(str(child))
            visit(str(child), child_body)

    for name, body in document.items():
        visit(str(name), body)
    return groups


def _flatten(groups: dict[str, Group]) -> list[InventoryHost]:
    parents: dict[str, list[str]] = {}
    for name, group in groups.items():
        for child in group.children:
            parents.setdefault(child, []).append(name)

    def ancestry(name: str, seen: tuple[str, ...] = ()) -> list[str]:
        """The group, then its parents, nearest first."""
        if name in seen:
            raise InventoryError(f"group {name!r} is its own ancestor")
        order = [name]
        for parent in parents.get(name, []):
            order += [g for g in ancestry(parent, (*seen, name)) if g not in order]
        return order

    hosts: dict[str, tuple[dict, list[str]]] = {}
    for name, group in groups.items():
        for host, host_vars in group.hosts.items():
            merged, member_of = hosts.setdefault(host, ({}, []))
            merged.update(host_vars)
            member_of += [g for g in ancestry(name) if g not in member_of]
    return [_host(name, own, member_of, groups) for name, (own, member_of) in sorted(hosts.items())]


def _host(name: str, own: dict, member_of: list[str], groups: dict[str, Group]) -> InventoryHost:
    values: dict[str, object] = {}
    for group in reversed([*member_of, "all"]):  # farthest first, so nearer groups and the host itself win
        values.update(groups.get(group, Group()).vars)
    values.update(own)
    labels = {group: "" for group in member_of if group not in IMPLICIT_GROUPS}
    for key, value in values.items():
        if key.startswith("ansible_") or not isinstance(value, (str, int)) or isinstance(value, bool):
            continue
        try:
            labels[check_key(key)] = check_value(key, str(value))
        except LabelError:
            continue  # not every variable makes a label
    try:
        labels = {check_key(key): value for key, value in labels.items()}
    except LabelError as exc:
        raise InventoryError(f"host {name!r}: group name cannot be a label: {exc}") from None
    port = values.get("ansible_port", values.get("ansible_ssh_port", 22))
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise InventoryError(f"host {name!r}: ansible_port {port!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise InventoryError(f"host {name!r}: ansible_port {port} is not from 1 to 65535")
    host = str(values.get("ansible_host", values.get("ansible_ssh_host", name)))
    user = str(values.get("ansible_user", values.get("ansible_ssh_user", "")))
    return InventoryHost(name=name, host=host, port=port, username=user, labels=labels)
