"""The audit trail as JSON lines, streamed: one entry per line, oldest first, in pages of the primary key."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

PAGE = 500


def lines(entries: QuerySet) -> Iterator[str]:
    """Walks by id, not OFFSET: an export of millions of entries stays cheap, and entries added meanwhile
    (ids above where it started) are left for the next export."""
    entries = entries.order_by("id")
    last = entries.values_list("id", flat=True).last()
    after = 0
    while last is not None:
        page = list(entries.filter(id__gt=after, id__lte=last)[:PAGE])
        if not page:
            return
        for entry in page:
            yield json.dumps(entry.as_record(), default=str, sort_keys=True) + "\n"
        after = page[-1].pk


def response(entries: QuerySet) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    answer = StreamingHttpResponse(lines(entries), content_type="application/x-ndjson")
    answer["Content-Disposition"] = f'attachment; filename="relayhub-audit-{stamp}.jsonl"'
    return answer
