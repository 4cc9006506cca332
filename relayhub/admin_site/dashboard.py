"""What the admin index shows, limited to the relays and commands the user may see."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Min, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from assignments import access
from assignments.models import online_since
from audit.models import AuditEntry
from commands import approvals, display, visibility
from commands.choices import CommandStatus
from relayhub.admin_site import charts

FAILURES = (CommandStatus.FAILED, CommandStatus.TIMEOUT)


def dashboard(user) -> dict[str, Any]:
    now = timezone.now()
    enabled = access.relays_for(user).select_related("status").filter(enabled=True)
    commands = visibility.commands_for(user)
    return {
        **numbers(user, now),
        "not_fetching_relays": list(enabled.filter(_alive(), status__not_fetching_since__isnull=False)
                                    .order_by("name")[:20]),
        "stalest_relays": list(enabled.order_by(F("status__last_heartbeat_at").asc(nulls_first=True), "name")[:5]),
        "latest_failures": list(commands.filter(status__in=FAILURES).select_related("created_by")[:8]),
        "hourly_chart": hourly_chart(commands.filter(created_at__gte=now - timedelta(hours=24)), now),
        **recent_activity(user),
    }


def _alive() -> Q:
    return Q(status__last_heartbeat_at__gt=online_since())


def numbers(user, now) -> dict[str, Any]:
    """The cards and the counts by status: what the dashboard's live stream keeps up to date."""
    relays = access.relays_for(user)
    enabled = relays.filter(enabled=True)
    commands = visibility.commands_for(user)
    counts = dict(commands.filter(created_at__gte=now - timedelta(hours=24)).order_by()
                  .values_list("status").annotate(n=Count("id")))
    return {
        "relay_counts": {
            "online": enabled.filter(_alive()).count(),
            "offline": enabled.exclude(_alive()).count(),
            "disabled": relays.filter(enabled=False).count(),
        },
        "status_counts": [(status, counts.get(status, 0)) for status in CommandStatus.values],
        "commands_24h": sum(counts.values()),
        "approvals_waiting": len(approvals.waiting_for(user)),
        **right_now(commands, now),
    }


def recent_activity(user) -> dict[str, Any]:
    """The audit trail's latest entries: everyone's for those who may read the trail, else the user's own."""
    everyones = user.has_perm("audit.view_auditentry")
    entries = AuditEntry.objects.all() if everyones else AuditEntry.objects.filter(actor_id=user.pk)
    return {"recent_activity": list(entries[:10]), "activity_is_everyones": everyones}


def live_numbers(user) -> dict[str, Any]:
    """``numbers`` by the ``data-testid`` of the element that shows each (dashboard.html), for dashboard.js."""
    shown = numbers(user, timezone.now())
    relays = shown["relay_counts"]
    return {
        "relays-online": relays["online"], "relays-offline": relays["offline"], "relays-disabled": relays["disabled"],
        "commands-24h": shown["commands_24h"], "running-now": shown["running_now"],
        "pending-now": shown["pending_now"], "oldest-pending": shown["oldest_pending_note"],
        "approvals-waiting": shown["approvals_waiting"],
        **{f"count-{status}": count for status, count in shown["status_counts"]},
    }


def right_now(commands, now) -> dict[str, Any]:
    """Commands running and pending now, whenever queued, and how long the oldest pending one has waited."""
    live = commands.filter(status__in=[CommandStatus.PENDING, *CommandStatus.active()]).order_by()
    counts = live.aggregate(running=Count("id", filter=Q(status__in=CommandStatus.active())),
                            pending=Count("id", filter=Q(status=CommandStatus.PENDING)),
                            oldest=Min("created_at", filter=Q(status=CommandStatus.PENDING)))
    age = None if counts["oldest"] is None else max(now - counts["oldest"], timedelta(0))
    text = "" if age is None else display.human_ms(max(round(age.total_seconds()), 1) * 1000)
    return {"running_now": counts["running"], "pending_now": counts["pending"], "oldest_pending_age": age,
            "oldest_pending_text": text, "oldest_pending_note": f"the oldest for {text}" if text else "none waiting"}


def hourly_chart(recent, now) -> charts.BarChart:
    per_hour = {
        row["hour"]: row
        for row in recent.order_by().annotate(hour=TruncHour("created_at")).values("hour").annotate(
            total=Count("id"), failed=Count("id", filter=Q(status__in=FAILURES)))
    }
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    buckets = []
    for back in range(23, -1, -1):
        hour = this_hour - timedelta(hours=back)
        row = per_hour.get(hour, {"total": 0, "failed": 0})
        buckets.append((f"{hour:%H}:00", row["total"], row["failed"]))
    return charts.bar_chart(buckets)
