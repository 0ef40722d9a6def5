"""Counterfactual reports: request one, compute it in the evaluation worker, with progress.

A request creates a queued report and publishes its task after the commit; the
``evaluation`` worker (its own Celery queue and process, so learning and decide never wait
behind it) computes it from the ledgers. At most one report per experiment is queued or
running: asking again returns it. Beat re-publishes a queued report whose message was lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

import policies
from mabdash.errors import NotFound
from mabdash.evaluation.models import CounterfactualReport
from mabdash.evaluation.services.ledger import ledger_log
from mabdash.experiments.models import Experiment, PolicyState
from mabdash.experiments.selectors import retention_boundary
from mabdash.experiments.services.experiments import strategy_params
from mabdash.queue import background, send_task
from policies.counterfactual import counterfactual_report

logger = logging.getLogger(__name__)

REPORT_TASK = "mabdash.evaluation.tasks.counterfactual_task"
#: A queued report older than this without a start is published again (lost message).
REQUEUE_AFTER = timedelta(minutes=2)
#: A running report older than this is marked failed (its worker died).
RUNNING_LIMIT = timedelta(minutes=30)
PROGRESS_EVERY_SECONDS = 0.5


def report_request(experiment: Experiment, requested_by: str, since: datetime | None = None) -> CounterfactualReport:
    """Queue a fresh report (or return the one already queued or running)."""
    with transaction.atomic():
        Experiment.objects.select_for_update().filter(pk=experiment.pk).first()  # one request at a time
        pending = CounterfactualReport.objects.filter(
            experiment=experiment, status__in=[CounterfactualReport.Status.QUEUED, CounterfactualReport.Status.RUNNING]
        ).first()
        if pending is not None:
            return pending
        report = CounterfactualReport.objects.create(
            experiment=experiment, requested_by=requested_by, requested_at=timezone.now(), since=since
        )
        transaction.on_commit(partial(_publish, report.pk))
    return report


def _publish(report_id: int) -> None:
    background.submit(("counterfactual", report_id), partial(send_task, REPORT_TASK, [report_id]))


def report_compute(report_id: int, on_progress: Callable[[float, str], None] | None = None) -> CounterfactualReport:
    """Compute a queued report now (the worker's task; also the management command, which
    passes ``on_progress`` for its progress bar)."""
    claimed = CounterfactualReport.objects.filter(pk=report_id, status=CounterfactualReport.Status.QUEUED).update(
        status=CounterfactualReport.Status.RUNNING, started_at=timezone.now(), stage="reading the ledgers"
    )
    report = CounterfactualReport.objects.select_related("experiment").get(pk=report_id)
    if not claimed:
        return report  # running elsewhere, or already done
    try:
        result, version, until = _evaluate(report, on_progress)
    except Exception as error:
        logger.exception("counterfactual report %s failed", report_id)
        CounterfactualReport.objects.filter(pk=report_id).update(
            status=CounterfactualReport.Status.FAILED, finished_at=timezone.now(), error=str(error)[:2000]
        )
    else:
        CounterfactualReport.objects.filter(pk=report_id).update(
            status=CounterfactualReport.Status.DONE,
            finished_at=timezone.now(),
            result=result,
            ledger_version=version,
            until=until,
            progress=1.0,
            stage="done",
        )
    report.refresh_from_db()
    return report


def _evaluate(
    report: CounterfactualReport, on_progress: Callable[[float, str], None] | None
) -> tuple[dict[str, Any], int, datetime]:
    experiment = report.experiment
    until = timezone.now()
    state = PolicyState.objects.get(experiment=experiment)
    archived_before = retention_boundary(experiment.pk)
    since = max((t for t in (report.since, archived_before) if t is not None), default=None)
    log = ledger_log(experiment, since, until)
    arms = list(experiment.arms.select_related("model_version").order_by("position"))
    strategies = {}
    for kind in policies.POLICIES:
        params = strategy_params(experiment, kind)
        if params is not None:
            name = f"{kind} (this experiment's)" if kind == experiment.policy_kind else kind
            strategies[name] = (kind, params)
    last = [0.0]

    def progress(fraction: float, stage: str) -> None:
        if on_progress is not None:
            on_progress(fraction, stage)
        if time.monotonic() - last[0] >= PROGRESS_EVERY_SECONDS or fraction >= 1.0:
            last[0] = time.monotonic()
            CounterfactualReport.objects.filter(pk=report.pk).update(progress=round(fraction, 3), stage=stage[:200])

    result = counterfactual_report(
        log,
        labels=[str(arm.model_version) for arm in arms],
        strategies=strategies,
        current_allocation=state.allocation,
        seed=experiment.policy_seed,
        progress=progress,
    )
    result["period"] = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat(),
        "archived_before": archived_before.isoformat() if archived_before else None,
    }
    return result, state.version, until


def reports_requeue_due(now: datetime | None = None) -> int:
    """Beat: publish queued reports again whose message was lost; fail reports stuck running."""
    now = now or timezone.now()
    CounterfactualReport.objects.filter(
        status=CounterfactualReport.Status.RUNNING, started_at__lt=now - RUNNING_LIMIT
    ).update(status=CounterfactualReport.Status.FAILED, finished_at=now, error="the worker stopped before finishing")
    stale = list(
        CounterfactualReport.objects.filter(
            status=CounterfactualReport.Status.QUEUED, requested_at__lt=now - REQUEUE_AFTER
        ).values_list("pk", flat=True)
    )
    for report_id in stale:
        _publish(report_id)
    return len(stale)


def report_latest(experiment: Experiment) -> CounterfactualReport:
    """The newest report of an experiment (any status); NotFound if there is none."""
    report = CounterfactualReport.objects.filter(experiment=experiment).order_by("-requested_at", "-pk").first()
    if report is None:
        raise NotFound({"experiment": [f"no counterfactual report for {experiment.slug!r} yet; POST to ask for one"]})
    return report


def report_done_latest(experiment: Experiment) -> CounterfactualReport | None:
    """The newest finished report (for the dashboard panel)."""
    return (
        CounterfactualReport.objects.filter(experiment=experiment, status=CounterfactualReport.Status.DONE)
        .order_by("-finished_at", "-pk")
        .first()
    )
