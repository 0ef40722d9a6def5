"""The experiment page: its figures, arms table, control panel and freshness."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import Q
from django.utils import timezone

from mabdash.control.models import ActionRequest, GuardrailState, WebhookDelivery
from mabdash.control.services.monitors import ArmMonitors
from mabdash.dashboard import charts
from mabdash.dashboard.selectors.history import latest_entry_id
from mabdash.dashboard.selectors.snapshots import iso, served_allocation, snapshot_series
from mabdash.experiments.models import Arm, AuditEntry, Decision, Experiment, Override, Reward
from mabdash.experiments.selectors import experiment_state, override_active
from policies.detectors import proven_best
from policies.guardrails import guardrail_config

RANGES = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400, "all": None}
LAG_SAMPLE = 2000
# Decisions older than this are not "recent" for the waiting share. The bound also lets
# PostgreSQL prune the decision ledger's day partitions (the default partition included)
# and read them newest first; without it a month of ledger is sorted in full.
WAITING_WINDOW = timedelta(days=1)
EVENT_LIMIT = 200


def live_point(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The current state as the last point of every series."""
    return {
        "created_at": now,
        "policy_version": state["policy_version"],
        "allocation": [arm["policy_allocation"] for arm in state["arms"]],
        "effective": [arm["allocation"] for arm in state["arms"]],
        "served": [arm["served"] for arm in state["arms"]],
        "reward_counts": [arm["rewards"] for arm in state["arms"]],
        "reward_sums": [arm["reward_sum"] for arm in state["arms"]],
        "means": [arm["mean"] for arm in state["arms"]],
        "lower": [arm["lower"] for arm in state["arms"]],
        "upper": [arm["upper"] for arm in state["arms"]],
    }


def reward_lag(experiment_id: int, now: datetime) -> tuple[list[float], float | None]:
    """Lags of the latest rewards, and the share of recent decisions still waiting.

    Both are estimated from the most recent ``LAG_SAMPLE`` rows of the last
    ``WAITING_WINDOW`` so the cost stays bounded however busy the experiment is and however
    long its history. Decisions younger than a minute are not counted as waiting yet.
    """
    window_start = now - WAITING_WINDOW
    # The window prunes the (day-partitioned) reward ledger to its last days: without it the
    # newest rewards are merged from every day's index.
    rows = (
        Reward.objects.filter(experiment_id=experiment_id, decided_at__isnull=False, received_at__gt=window_start)
        .order_by("-received_at")
        .values_list("received_at", "decided_at")[:LAG_SAMPLE]
    )
    lags = [round((received - decided).total_seconds(), 3) for received, decided in rows if decided is not None]
    decisions = list(
        Decision.objects.filter(
            experiment_id=experiment_id,
            created_at__lte=now - timedelta(minutes=1),
            created_at__gt=window_start,
        )
        .order_by("-created_at")
        .values_list("decision_id", "created_at")[:LAG_SAMPLE]
    )
    if not decisions:
        return lags, None
    # A reward comes after its decision, so only the experiment's rewards received since the
    # oldest sampled decision can answer one: bounded by the sample's own span, not the
    # window's (a busy experiment's day holds millions of rewards). A minute of margin for
    # the clocks of the servers that issued the decisions.
    oldest = min(created_at for _, created_at in decisions)
    rewarded = set(
        Reward.objects.filter(
            experiment_id=experiment_id,
            received_at__gt=oldest - timedelta(minutes=1),
            received_at__lte=now,
            decision_id__in=[decision_id for decision_id, _ in decisions],
        ).values_list("decision_id", flat=True)
    )
    return lags, 1 - len(rewarded) / len(decisions)


def override_periods(experiment: Experiment, since: datetime | None, now: datetime) -> list[dict[str, Any]]:
    """When a pin or manual weights replaced the policy's split (for shading the charts)."""
    overrides = Override.objects.filter(experiment=experiment).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=since) if since else Q()
    )
    periods = []
    for override in overrides.order_by("created_at")[:200]:
        end = override.ended_at or (override.expires_at if override.expires_at and override.expires_at < now else now)
        label = f"pin #{override.position}" if override.kind == Override.Kind.PIN else "manual weights"
        periods.append(
            {
                "start": iso(max(override.created_at, since) if since else override.created_at),
                "end": iso(end),
                "label": label,
            }
        )
    return periods


def chart_events(experiment: Experiment, since: datetime | None) -> list[dict[str, Any]]:
    """Actions to mark on the allocation chart: the sentence of each, newest last."""
    entries = AuditEntry.objects.filter(experiment=experiment)
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    latest = list(entries.order_by("-created_at", "-id")[:EVENT_LIMIT])
    return [
        {"time": iso(e.created_at), "kind": e.kind, "text": f"{e.summary or e.kind} ({e.actor})"}
        for e in reversed(latest)
    ]


def _last_change(experiment: Experiment) -> dict[str, str] | None:
    entry = AuditEntry.objects.filter(experiment=experiment).order_by("-created_at", "-id").first()
    return {"summary": entry.summary or entry.kind, "actor": entry.actor} if entry else None


def experiment_dashboard(experiment: Experiment, range_key: str = "all") -> dict[str, Any]:
    """Everything the detail page refreshes: figures, arms table, versions, freshness."""
    now = timezone.now()
    seconds = RANGES.get(range_key)
    since = now - timedelta(seconds=seconds) if seconds else None
    state = experiment_state(experiment)
    labels = [f"#{a['position']} {a['model']['name']}:{a['model']['version']}" for a in state["arms"]]
    points = [*snapshot_series(experiment.pk, since), live_point(state, now)]
    times = [iso(p["created_at"]) for p in points]
    belief = state.pop("belief")
    lags, waiting = reward_lag(experiment.pk, now)
    cumulative = [float(sum(p["reward_sums"])) for p in points]
    regret = [charts.estimated_regret(p["reward_counts"], p["means"]) for p in points]
    return {
        "generated_at": iso(now),
        "policy_updated_at": iso(state["updated_at"]),
        "control_version": experiment.control_version,
        "history_version": latest_entry_id(experiment),
        "last_change": _last_change(experiment),
        "has_data": any(arm["served"] or arm["rewards"] for arm in state["arms"]),
        "state": {**state, "updated_at": iso(state["updated_at"])},
        "labels": labels,
        "figures": {
            "allocation": charts.allocation_figure(
                times,
                [served_allocation(p) for p in points],
                labels,
                chart_events(experiment, since),
                policy_allocations=[p["allocation"] for p in points],
                overrides=override_periods(experiment, since, now),
            ),
            "means": charts.means_figure(
                times, [p["means"] for p in points], [p["lower"] for p in points], [p["upper"] for p in points], labels
            ),
            "cumulative": charts.cumulative_figure(times, cumulative, regret),
            "belief": charts.belief_figure(belief, labels),
            "probability_best": charts.probability_best_figure([a["probability_best"] for a in state["arms"]], labels),
            "traffic": charts.traffic_figure(times, [p["served"] for p in points], labels),
            "lag": charts.lag_figure(lags, waiting),
        },
        "waiting_share": waiting,
    }


def control_panel(experiment: Experiment) -> dict[str, Any]:
    """What the detail page's control cards show: arms, the override, requests, deliveries."""
    override = override_active(experiment.pk)
    arms = list(experiment.arms.select_related("model_version").order_by("position"))
    weights = override.weights if override is not None and override.kind == Override.Kind.WEIGHTS else None
    return {
        "arms": arms,
        "override": override,
        # The weights form shows the weights in force (as percentages), else the policy's split.
        "active_weights": [round(100 * w, 2) for w in weights] if weights else None,
        "pending_requests": list(
            ActionRequest.objects.filter(experiment=experiment, status=ActionRequest.Status.PENDING).order_by(
                "created_at"
            )
        ),
        "recent_requests": list(
            ActionRequest.objects.filter(experiment=experiment).exclude(status=ActionRequest.Status.PENDING)[:10]
        ),
        "deliveries": list(
            WebhookDelivery.objects.filter(webhook__experiment=experiment).select_related("webhook")[:20]
        ),
        "winner": winner_suggestion(experiment, arms),
    }


def winner_suggestion(experiment: Experiment, arms: list[Arm]) -> dict[str, Any] | None:
    """The arm to promote, when the guardrails' confidence sequences prove it better than
    every other active arm (the same anytime-valid test as the A/B strategy's commit)."""
    if experiment.reward_kind == Experiment.RewardKind.REAL or len(arms) < 2:
        return None
    state = GuardrailState.objects.filter(experiment=experiment).first()
    if state is None:
        return None
    alpha = guardrail_config(experiment.guardrails)["relative"]["alpha"]
    active = [arm.status == Arm.Status.ACTIVE for arm in arms]
    sequences = ArmMonitors(state.arms, np.array(active)).sequences(len(arms))
    proven = proven_best(sequences, active, alpha=alpha, min_samples=50)
    if proven is None:
        return None
    labels = {arm.position: str(arm.model_version) for arm in arms}
    return {"arm": proven.arm, "label": labels[proven.arm], "sentence": proven.sentence(labels, alpha)}
