"""Live output chunks: stored once per (command, stream, offset), capped per stream."""

from __future__ import annotations

from django.conf import settings

from commands.models import Command, OutputChunk


def store_chunks(command: Command, chunks: list[dict]) -> None:
    cap = settings.RELAYHUB["OUTPUT_CAP_BYTES"]
    rows, truncated = [], False
    for chunk in chunks:
        offset, data = chunk["offset"], chunk["data"]
        if offset + len(data) > cap:
            truncated = True
            data = data[: max(cap - offset, 0)]
        if data:
            rows.append(OutputChunk(command=command, stream=chunk["stream"], offset=offset, data=data))
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
