"""Prometheus metrics at ``/metrics``: the request instruments and experiment gauges.

Experiment gauges — pending rewards, learning lag, rollbacks, pending approvals — are read
from the database at scrape time, so they are right whichever process answers.

The endpoint is off (404) unless ``MABDASH_METRICS_TOKEN`` is set, and then needs
``Authorization: Bearer <token>``: metrics name experiments and must not be public.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from mabdash.control.models import ActionRequest
from mabdash.experiments.models import AuditEntry, Experiment
from mabdash.experiments.selectors import pending_reward_summary
from mabdash.metrics import DECIDE_SECONDS, REWARD_REQUEST_SECONDS, REWARDS


class ExperimentCollector:
    """Gauges read from the database when Prometheus scrapes."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        pending = GaugeMetricFamily(
            "mabdash_pending_rewards", "Rewards stored but not yet learned.", labels=["experiment"]
        )
        lag = GaugeMetricFamily(
            "mabdash_learning_lag_seconds",
            "Age of the oldest reward not yet learned (0 when none).",
            labels=["experiment"],
        )
        rollbacks = GaugeMetricFamily("mabdash_rollbacks", "Arms rolled back so far.", labels=["experiment"])
        approvals = GaugeMetricFamily(
            "mabdash_approvals_pending", "Requests waiting for a decision.", labels=["experiment"]
        )
        waiting = pending_reward_summary()
        rolled = dict(
            AuditEntry.objects.filter(kind="rollback.applied").values_list("experiment_id").annotate(n=Count("id"))
        )
        requested = dict(
            ActionRequest.objects.filter(status=ActionRequest.Status.PENDING)
            .values_list("experiment_id")
            .annotate(n=Count("id"))
        )
        for experiment_id, slug in Experiment.objects.filter(~Q(status=Experiment.Status.STOPPED)).values_list(
            "pk", "slug"
        ):
            count, oldest = waiting.get(experiment_id, (0, now))
            pending.add_metric([slug], count)
            lag.add_metric([slug], (now - oldest).total_seconds())
            rollbacks.add_metric([slug], rolled.get(experiment_id, 0))
            approvals.add_metric([slug], requested.get(experiment_id, 0))
        yield from (pending, lag, rollbacks, approvals)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # every worker's request metrics
    else:
        for collector in (DECIDE_SECONDS, REWARD_REQUEST_SECONDS, REWARDS):
            registry.register(collector)
    registry.register(ExperimentCollector())
    return registry


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.MABDASH_METRICS_TOKEN
    if not token:
        return HttpResponse("metrics are off: set MABDASH_METRICS_TOKEN\n", status=404, content_type="text/plain")
    sent = request.META.get("HTTP_AUTHORIZATION", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        response = HttpResponse(
            "send Authorization: Bearer <MABDASH_METRICS_TOKEN>\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
