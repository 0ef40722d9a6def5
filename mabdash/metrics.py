"""Prometheus metrics at ``/metrics`` (prometheus_client).

Request metrics are recorded by each web process; with several gunicorn workers they are
aggregated through ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py sets it up). Experiment
gauges — pending rewards, learning lag, rollbacks, pending approvals — are read from the
database at scrape time, so they are right whichever process answers.

The endpoint is off (404) unless ``MABDASH_METRICS_TOKEN`` is set, and then needs
``Authorization: Bearer <token>``: metrics name experiments and must not be public.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

DECIDE_SECONDS = Histogram("mabdash_decide_seconds", "Time to answer a decide request.", buckets=LATENCY_BUCKETS)
REWARD_REQUEST_SECONDS = Histogram(
    "mabdash_reward_request_seconds", "Time to answer a reward POST (one or a batch).", buckets=LATENCY_BUCKETS
)
REWARDS = Counter("mabdash_rewards", "Reward items by outcome.", ["outcome"])


class ExperimentCollector:
    """Gauges read from the database when Prometheus scrapes."""

    def collect(self):
        from mabdash.control.models import ActionRequest
        from mabdash.experiments.models import AuditEntry, Experiment, Reward

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
        waiting = {
            row["experiment_id"]: row
            for row in Reward.objects.filter(learn=True, applied_version__isnull=True)
            .values("experiment_id")
            .annotate(n=Count("id"), oldest=Min("received_at"))
        }
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
            row = waiting.get(experiment_id)
            pending.add_metric([slug], row["n"] if row else 0)
            lag.add_metric([slug], (now - row["oldest"]).total_seconds() if row else 0.0)
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
