"""The dashboard's live stream (Server-Sent Events): its cards and counts, as they change.

Woken by every command queued (``machine:*``) or ended (``command:*``) in any process that shares the
broker; no more than once a second, since a busy hub publishes far more often than anyone reads. It also
looks every ``LIVE_DASHBOARD_POLL_MS``, for what is not published: claims, starts, relays coming and going.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from commands.streams import events, refusal, staff_user
from relayhub.admin_site.dashboard import live_numbers
from relayhub.web import sse

MIN_GAP_S = 1.0


class DashboardFollower:
    def __init__(self, user) -> None:  # noqa: ANN001 - a User
        self.user = user
        self.shown: dict | None = None

    def look(self) -> tuple[list[bytes], bool]:
        numbers = live_numbers(self.user)
        if numbers == self.shown:
            return [], False
        self.shown = numbers
        return [sse.event(numbers, name="numbers")], False


async def dashboard_stream(request: HttpRequest) -> HttpResponse:
    """``GET /admin/live/``: the dashboard's numbers, by the ``data-testid`` of the element showing each.

    Permission: the dashboard's own. Active staff signed in to the admin (403 otherwise); the numbers count
    only the relays and commands the user may see (``relayhub.admin_site.dashboard.numbers``, through
    ``assignments.access`` and ``commands.visibility``), and the approvals awaiting that user.

    Events: ``numbers``, on connect and whenever one of them changes. It ends after ``LIVE_STREAM_S``, and
    the browser reconnects.
    """
    if refused := await refusal(request):
        return refused
    follower = DashboardFollower(await sse.in_db(staff_user, request))
    return sse.response(events(follower.look, "machine:*", "command:*", poll="LIVE_DASHBOARD_POLL_MS",
                               min_gap_s=MIN_GAP_S))
