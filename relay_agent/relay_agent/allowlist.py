"""The allowed_commands policy: commands split into arguments by POSIX rules, matched argument by argument.

Matching a glob against the whole command text and then handing that text to `sh -c` let
`systemctl status x; touch /tmp/p` through under `systemctl status *`. So while a relay has an
allow-list, a command holding any shell operator, redirection or substitution is refused outright,
the rest is split with shlex, every argument must match its entry's argument (fnmatchcase; `*`
never crosses an argument boundary), and the arguments run without a shell.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from fnmatch import fnmatchcase

REFUSED = "command not allowed by this relay's allowed_commands policy"

# Refused anywhere in the text, even inside quotes: a quoted ';' is harmless, but telling quoted
# from unquoted is where bypasses live, and refusing a harmless command is the safe mistake.
SHELL_SYNTAX = frozenset(";&|<>()$`\n\r\0")

Pattern = tuple[str, ...]


class CommandRefused(ValueError):
    """The command must not run; str() is the error to fail it with."""


def split_arguments(text: str) -> list[str]:
    """The arguments of a command or an allow-list entry; ValueError (a short reason) when it holds shell syntax."""
    for char in text:
        if char in SHELL_SYNTAX:
            raise ValueError(f"shell syntax {char!r} is not allowed")
    try:
        arguments = shlex.split(text, posix=True)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise ValueError(f"cannot be split into arguments: {str(exc).lower()}") from None
    if not arguments:
        raise ValueError("it is empty")
    if arguments[0].startswith("-"):
        raise ValueError("a program name cannot start with '-'")
    return arguments


def parse_entries(entries: Iterable[str]) -> list[Pattern]:
    """Every entry split like a command; ValueError naming the first entry that cannot be one."""
    patterns = []
    for index, entry in enumerate(entries):
        try:
            patterns.append(tuple(split_arguments(entry)))
        except ValueError as exc:
            raise ValueError(f"allowed_commands[{index}]: {exc}") from None
    return patterns


def matches(arguments: list[str], pattern: Pattern) -> bool:
    return len(arguments) == len(pattern) and all(
        fnmatchcase(argument, glob) for argument, glob in zip(arguments, pattern, strict=True)
    )


def authorize(command: str, patterns: list[Pattern]) -> list[str]:
    """The argument list to run without a shell; CommandRefused when the policy does not allow the command."""
    try:
        arguments = split_arguments(command)
    except ValueError as exc:
        raise CommandRefused(f"{REFUSED}: {exc}") from None
    if not any(matches(arguments, pattern) for pattern in patterns):
        raise CommandRefused(f"{REFUSED}: no entry matches" if patterns else f"{REFUSED}: the list is empty")
    return arguments
