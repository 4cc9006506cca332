"""``GET /metrics``: Prometheus's text format, behind a bearer token (``RELAYHUB_METRICS_TOKEN``).

Two kinds of metric meet here. What happens (commands queued, claimed and
finished, relay events, config pushes, requests, long-polls) is counted in
the process where it happens (``relayhub.web.metrics``), and in multiprocess
mode added up over every process's files. What *is* (the queue per machine,
the relays by state) is read from the database when scraped, once per scrape
by whichever worker answers it, so it is the same whatever process answers.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from rest_framework import exceptions

from assignments.models import RelayAssignment, online_since
from commands.choices import CommandStatus
from commands.models import Command
from relayhub.web import failed_auth, metrics
from relayhub.web.errors import error_response

NOT_ENABLED = "metrics are not enabled: set RELAYHUB_METRICS_TOKEN to serve them"
BAD_TOKEN = "a valid bearer token is required (Authorization: Bearer <RELAYHUB_METRICS_TOKEN>)"  # nosec B105
NO_DIRECTORY = ("this hub runs several worker processes without PROMETHEUS_MULTIPROC_DIR, so each would answer "
                "with its own counts only: start it with python -m relayhub.serve, or set PROMETHEUS_MULTIPROC_DIR")


class DatabaseCollector(Collector):
    """Gauges read when scraped, each in one aggregate query."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        pending = GaugeMetricFamily("relayhub_commands_pending",
                                    "Commands waiting for a relay to claim them, per machine.", labels=["machine_id"])
        oldest = GaugeMetricFamily("relayhub_commands_pending_oldest_age_seconds",
                                   "How long the oldest pending command of each machine has waited.",
                                   labels=["machine_id"])
        rows = (Command.objects.filter(status=CommandStatus.PENDING).order_by().values("machine_id")
                .annotate(count=Count("id"), oldest=Min("created_at")))
        for row in rows:
            pending.add_metric([row["machine_id"]], row["count"])
            oldest.add_metric([row["machine_id"]], max((now - row["oldest"]).total_seconds(), 0.0))
        yield pending
        yield oldest

        alive = Q(status__last_heartbeat_at__gt=online_since())
        counts = RelayAssignment.objects.aggregate(
            n_enabled=Count("id", filter=Q(enabled=True)), n_online=Count("id", filter=Q(enabled=True) & alive),
            n_disabled=Count("id", filter=Q(enabled=False)),
            n_not_fetching=Count("id", filter=Q(enabled=True) & alive & Q(status__not_fetching_since__isnull=False)))
        relays = GaugeMetricFamily("relayhub_relays", "Relays by state: online (heard from within the online "
                                   "threshold), offline (enabled, not heard from), disabled.", labels=["state"])
        relays.add_metric(["online"], counts["n_online"])
        relays.add_metric(["offline"], counts["n_enabled"] - counts["n_online"])
        relays.add_metric(["disabled"], counts["n_disabled"])
        yield relays
        stuck = GaugeMetricFamily("relayhub_relays_not_fetching", "Online relays that have not fetched commands while "
                                  "commands waited for their machine (signs of life, but doing nothing).")
        stuck.add_metric([], counts["n_not_fetching"])
        yield stuck


class Scrape:
    """Everything one scrape reads, in the shape ``generate_latest`` takes."""

    def collect(self) -> Iterator[Metric]:
        for collector in (*metrics.collectors(), DatabaseCollector()):
            yield from collector.collect()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _check(request: HttpRequest, expected: str) -> None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Compared as digests, in constant time, so that neither the token's bytes nor its length leak.
    if scheme.lower() != "bearer" or not hmac.compare_digest(_digest(given.strip()), _digest(expected)):
        raise exceptions.AuthenticationFailed(BAD_TOKEN)


def metrics_view(request: HttpRequest) -> HttpResponse:
    expected = settings.METRICS_TOKEN
    if not expected:
        return error_response(request, 404, NOT_ENABLED)
    if request.method not in ("GET", "HEAD"):
        return JsonResponse({"error": f'Method "{request.method}" not allowed.'}, status=405,
                            headers={"Allow": "GET, HEAD"})
    try:
        # A wrong token counts against the client's address like a wrong API token (429 past the limit).
        failed_auth.guard(lambda: _check(request, expected))
    except exceptions.Throttled as exc:
        return JsonResponse({"error": str(exc.detail)}, status=429,
                            headers={"Retry-After": str(math.ceil(exc.wait or 1))})
    except exceptions.AuthenticationFailed:
        return JsonResponse({"error": BAD_TOKEN}, status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if metrics.several_processes_without_directory():
        return error_response(request, 503, NO_DIRECTORY)
    return HttpResponse(generate_latest(Scrape()), content_type=CONTENT_TYPE_LATEST)
