"""The overview page: one row per experiment, in a fixed number of queries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from mabdash.control.models import ActionRequest
from mabdash.dashboard import charts
from mabdash.dashboard.selectors.snapshots import iso, served_allocation, snapshot_series_many
from mabdash.experiments.models import AuditEntry, Decision, Experiment, PolicyState, Reward
from mabdash.experiments.selectors import effective_allocation, overrides_active, pending_reward_summary

LEARNING_LAG_ALERT_SECONDS = 60
STALL_WINDOW = timedelta(minutes=15)


def _per_experiment_counts(queryset: QuerySet[Any], experiment_ids: list[int]) -> dict[int, int]:
    rows = queryset.filter(experiment_id__in=experiment_ids).values("experiment_id").annotate(n=Count("*"))
    return {row["experiment_id"]: row["n"] for row in rows}


def overview_alerts(experiments: list[Experiment], now: datetime) -> dict[int, list[str]]:
    """Short alert texts per experiment: learning lagging, rewards stalled, guardrail breaches.

    A fixed number of queries for any number of experiments.
    """
    ids = [experiment.pk for experiment in experiments]
    pending = pending_reward_summary()
    recent_decisions = _per_experiment_counts(Decision.objects.filter(created_at__gte=now - STALL_WINDOW), ids)
    recent_rewards = _per_experiment_counts(Reward.objects.filter(received_at__gte=now - STALL_WINDOW), ids)
    breaches = _per_experiment_counts(
        AuditEntry.objects.filter(created_at__gte=now - timedelta(hours=24), kind__regex=r"^(rollback|guardrail)"),
        ids,
    )
    alerts: dict[int, list[str]] = {}
    for experiment in experiments:
        found = []
        _, oldest = pending.get(experiment.pk, (0, None))
        if oldest and (now - oldest).total_seconds() > LEARNING_LAG_ALERT_SECONDS:
            found.append(f"learning lagging: rewards waiting {int((now - oldest).total_seconds())} s")
        running = experiment.status == Experiment.Status.RUNNING
        if running and recent_decisions.get(experiment.pk) and not recent_rewards.get(experiment.pk):
            found.append("rewards stalled: decisions but no rewards in 15 min")
        count = breaches.get(experiment.pk, 0)
        if count:
            found.append(f"guardrail: {count} event{'s' if count > 1 else ''} in 24 h")
        alerts[experiment.pk] = found
    return alerts


def overview_rows(experiments: QuerySet[Experiment]) -> list[dict[str, Any]]:
    """One row per experiment for the overview page, in a fixed number of queries."""
    now = timezone.now()
    hour_ago = now - timedelta(hours=1)
    listed = list(experiments.prefetch_related("arms__model_version"))
    ids = [experiment.pk for experiment in listed]
    states = {state.experiment_id: state for state in PolicyState.objects.filter(experiment_id__in=ids)}
    overrides = overrides_active(ids, now)
    decisions = _per_experiment_counts(Decision.objects.filter(created_at__gte=hour_ago), ids)
    rewards = _per_experiment_counts(Reward.objects.filter(received_at__gte=hour_ago), ids)
    requests = _per_experiment_counts(ActionRequest.objects.filter(status=ActionRequest.Status.PENDING), ids)
    alerts = overview_alerts(listed, now)
    sparklines = snapshot_series_many(ids, now - timedelta(hours=24), now, points=60)
    rows = []
    for experiment in listed:
        arms = sorted(experiment.arms.all(), key=lambda arm: arm.position)
        state = states.get(experiment.pk)
        allocation, _ = effective_allocation(
            state.allocation if state else [],
            arms,
            overrides.get(experiment.pk),
            status=experiment.status,
            default_position=experiment.default_position,
        )
        leader = max(range(len(arms)), key=lambda i: allocation[i]) if arms else None
        labels = [f"#{arm.position} {arm.model_version.name}:{arm.model_version.version}" for arm in arms]
        points = sparklines.get(experiment.pk, [])
        times = [iso(p["created_at"]) for p in points] + [iso(now)]
        rows.append(
            {
                "experiment": experiment,
                "leader": labels[leader] if leader is not None else None,
                "leader_share": allocation[leader] if leader is not None else None,
                "decisions_last_hour": decisions.get(experiment.pk, 0),
                "rewards_last_hour": rewards.get(experiment.pk, 0),
                "alerts": alerts[experiment.pk],
                "pending_requests": requests.get(experiment.pk, 0),
                "sparkline": charts.sparkline_figure(
                    times, [served_allocation(p) for p in points] + [list(allocation)], labels
                ),
            }
        )
    return rows
