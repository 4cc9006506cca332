"""What the fleet adds to a relay's admin page."""

from __future__ import annotations

from django.http import HttpRequest

from assignments.admin_views import relay_page_panel
from fleet.selection import targets_for


@relay_page_panel
def ssh_targets(request: HttpRequest, relay) -> dict:
    return {"ssh_targets": targets_for(request.user).filter(relays=relay).order_by("name")[:100]}
