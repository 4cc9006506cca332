"""Live output chunks and the final copy, capped in bytes per stream: the head and the tail are kept.

The live chunks are the head only, so a follower switching to the final copy (head, marker, tail) at
the end finds what it has already read at the same offsets.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from commands import notify
from commands.models import Command, OutputChunk


# The agent writes the same line (relay_agent/output.py, skip_marker): keep the two in step.
MARKER = re.compile(r"\n\[\.\.\. (\d+) bytes skipped by relayhub: output over the (\d+)-byte cap \.\.\.\]\n")


def skip_marker(skipped: int, cap: int) -> str:
    return f"\n[... {skipped} bytes skipped by relayhub: output over the {cap}-byte cap ...]\n"


def output_cap() -> tuple[int, int]:
    """The cap per stream in bytes, and how many of them the head gets."""
    cap = settings.RELAYHUB["OUTPUT_CAP_BYTES"]
    fraction = min(max(float(settings.RELAYHUB.get("OUTPUT_HEAD_FRACTION", 0.25)), 0.0), 1.0)
    return cap, int(cap * fraction)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _prefix(encoded: bytes, size: int) -> str:
    """At most ``size`` bytes from the front, cut on a character boundary."""
    return encoded[:max(size, 0)].decode("utf-8", "ignore")


def _suffix(encoded: bytes, size: int) -> tuple[str, int]:
    """At most ``size`` bytes from the end, cut on a character boundary, and how many bytes were left out."""
    start = max(len(encoded) - max(size, 0), 0)
    while start < len(encoded) and encoded[start] & 0xC0 == 0x80:
        start += 1
    return encoded[start:].decode("utf-8", "ignore"), start


def cap_final(text: str) -> tuple[str, bool]:
    """A final stream as stored: whole within the cap, else head, marker and tail; True if anything was skipped.

    An agent that capped already sends head, marker and tail; that is kept as sent when it fits this hub's
    split, and cut again otherwise, with the skipped counts added up.
    """
    cap, head_cap = output_cap()
    match = MARKER.search(text)
    if match:
        head, skipped, tail = text[:match.start()], int(match.group(1)), text[match.end():]
    else:
        head, skipped, tail = text, 0, ""
    head_bytes, tail_bytes = _utf8(head), _utf8(tail)
    if not match and len(head_bytes) <= cap:
        return text, False
    if match and len(head_bytes) <= head_cap and len(head_bytes) + len(tail_bytes) <= cap:
        return text, True
    kept_head = _prefix(head_bytes, head_cap)
    used = len(_utf8(kept_head))
    if match:
        skipped += len(head_bytes) - used
        kept_tail, left_out = _suffix(tail_bytes, cap - used)
    else:
        # No marker: what follows the head and the tail are one run of text.
        kept_tail, left_out = _suffix(head_bytes[used:], cap - used)
    skipped += left_out
    return kept_head + skip_marker(skipped, cap) + kept_tail, True


def store_chunks(command: Command, chunks: list[dict]) -> None:
    if command.secret_environment:
        return  # a secret could be cut across two chunks and escape the mask: only the masked final copy is kept
    _, cap = output_cap()  # live chunks are the head of the final copy, never more
    rows, truncated = [], False
    for stream in {chunk["stream"] for chunk in chunks}:
        mine = sorted((c for c in chunks if c["stream"] == stream), key=lambda c: c["offset"])
        stored = OutputChunk.objects.filter(command=command, stream=stream)
        known = set(stored.filter(offset__in=[c["offset"] for c in mine]).values_list("offset", flat=True))
        used = stored.aggregate(total=Sum("size"))["total"] or 0
        for chunk in mine:
            if chunk["offset"] in known:
                continue  # a resend: stored already, counted already
            known.add(chunk["offset"])
            encoded = chunk["data"].encode("utf-8", "surrogatepass")
            if used + len(encoded) > cap:
                truncated = True
                encoded = encoded[: max(cap - used, 0)]
            data = encoded.decode("utf-8", "ignore")
            if data:
                rows.append(OutputChunk(command=command, stream=stream, offset=chunk["offset"], data=data,
                                        size=len(data.encode("utf-8", "surrogatepass"))))
                used += rows[-1].size
    OutputChunk.objects.bulk_create(rows, ignore_conflicts=True)
    if truncated and not command.output_truncated:
        Command.objects.filter(pk=command.pk).update(output_truncated=True)
    if rows:  # whoever follows the command live (its page's stream) reads them now, not at its next poll
        topic = notify.output_topic(command.pk)
        transaction.on_commit(lambda: notify.publish(topic))


def since(command: Command, stream: str, offset: int) -> tuple[str, int]:
    """What a follower sees: live chunks while running, the final copy once ended."""
    if command.is_terminal:
        final = command.output if stream == "stdout" else command.stderr
        return final[offset:], max(offset, len(final))
    return read(command, stream, offset)


def read(command: Command, stream: str, offset: int = 0) -> tuple[str, int]:
    """The stream's text from ``offset`` on, and the offset to ask for next.

    Chunks may overlap or leave gaps (a resend after a partial failure), so they
    are stitched by offset and reading stops at the first gap.
    """
    text, position = [], offset
    for chunk_offset, data in (
        OutputChunk.objects.filter(command=command, stream=stream)
        .order_by("offset")
        .values_list("offset", "data")
    ):
        end = chunk_offset + len(data)
        if end <= position:
            continue
        if chunk_offset > position:
            break
        text.append(data[position - chunk_offset:])
        position = end
    return "".join(text), position
