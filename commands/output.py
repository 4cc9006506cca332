"""Live output chunks: stored once per (command, stream, offset), capped in bytes per stream."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Sum

from commands.models import Command, OutputChunk


def store_chunks(command: Command, chunks: list[dict]) -> None:
    cap = settings.RELAYHUB["OUTPUT_CAP_BYTES"]
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
