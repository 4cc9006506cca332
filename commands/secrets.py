"""Secret environment values: a command keeps only which shared credential to read, never the value.

The value is read when a relay is handed the command (``Command.to_wire``) and masked out of the
output the relay sends back. The credentials app, a layer above, registers the reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

MASK = "********"

# name of a shared credential -> its value, or None when there is no such credential
Reader = Callable[[str], "str | None"]
_reader: Reader | None = None


def register(reader: Reader) -> None:
    global _reader
    _reader = reader


def resolve(references: dict[str, str]) -> dict[str, str | None]:
    """NAME -> value for each NAME -> credential name; None where the credential is gone."""
    if _reader is None:
        raise RuntimeError("no secret reader registered (is the credentials app installed?)")
    return {name: _reader(credential) for name, credential in references.items()}


def mask(text: str, values: Iterable[str | None]) -> str:
    """``text`` with every secret value replaced, longest first (so that no part of a longer one survives)."""
    for value in sorted((v for v in values if v), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
