"""Reads for the dashboard pages and their JSON endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.db import connection
from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mabdash.control.models import ActionRequest, WebhookDelivery
from mabdash.dashboard import charts
from mabdash.experiments.models import (
    AllocationSnapshot,
    Arm,
    AuditEntry,
    Decision,
    Experiment,
    ModelVersion,
    PolicyState,
    Reward,
)
from mabdash.experiments.selectors import (
    effective_allocation,
    experiment_state,
    override_active,
    overrides_active,
    pending_reward_summary,
)

RANGES = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400, "all": None}
# Enough for a chart a few thousand pixels wide; every point costs decode and transfer time.
MAX_POINTS = 360
LAG_SAMPLE = 2000
LEARNING_LAG_ALERT_SECONDS = 60
STALL_WINDOW = timedelta(minutes=15)
ALERT_KINDS = ("rollback", "guardrail")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _snapshot_ids(experiment_id: int, since: datetime | None, max_points: int) -> list[int]:
    """Ids of at most ``max_points`` snapshots spread evenly over time.

    For each of ``max_points`` evenly spaced target times, the latest snapshot at or
    before it: one index probe each, in the database, whatever the history's length.
    """
    snapshots = AllocationSnapshot.objects.filter(experiment_id=experiment_id)
    if since is not None:
        snapshots = snapshots.filter(created_at__gte=since)
    few = list(snapshots.order_by("created_at").values_list("id", flat=True)[: max_points + 1])
    if len(few) <= max_points:
        return few
    bounds = snapshots.aggregate(first=Min("created_at"), last=Max("created_at"))
    step = (bounds["last"] - bounds["first"]) / (max_points - 1)
    targets = [bounds["first"] + i * step for i in range(max_points - 1)] + [bounds["last"]]
    placeholder = "(%s::timestamptz)" if connection.vendor == "postgresql" else "(%s)"
    table = AllocationSnapshot._meta.db_table
    sql = (
        f"SELECT DISTINCT (SELECT s.id FROM {table} s WHERE s.experiment_id = %s AND s.created_at <= t.column1 "
        f"ORDER BY s.created_at DESC, s.id DESC LIMIT 1) FROM (VALUES {', '.join([placeholder] * len(targets))}) AS t"
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(sql, [experiment_id, *(adapt(t) for t in targets)])
        return [row[0] for row in cursor.fetchall() if row[0] is not None]


def snapshot_series(experiment_id: int, since: datetime | None, max_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """Allocation snapshots since ``since`` (all if None), downsampled in the database.

    The ``series`` texts are joined and parsed in one ``orjson.loads`` call.
    """
    points = _snapshot_rows(_snapshot_ids(experiment_id, since, max_points))
    for point in points:
        del point["experiment_id"]
    return points


def _snapshot_rows(ids: list[int]) -> list[dict[str, Any]]:
    """Snapshots by id, oldest first, their series parsed (one ``orjson.loads`` for all)."""
    if not ids:
        return []
    table = AllocationSnapshot._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT experiment_id, created_at, policy_version, series FROM {table} "
            f"WHERE id IN ({', '.join(['%s'] * len(ids))}) ORDER BY experiment_id, created_at, id",
            ids,
        )
        rows = cursor.fetchall()
    parsed = orjson.loads("[" + ",".join(row[3] for row in rows) + "]")
    points = []
    for row, values in zip(rows, parsed, strict=True):
        created_at = row[1] if isinstance(row[1], datetime) else _parse_stored_time(row[1])
        points.append({"experiment_id": row[0], "created_at": created_at, "policy_version": row[2], **values})
    return points


def _parse_stored_time(text: str) -> datetime:
    parsed = parse_datetime(text)
    if parsed is None:
        raise ValueError(f"created_at: unreadable stored time {text!r}")
    return parsed.replace(tzinfo=UTC)


def snapshot_series_many(
    experiment_ids: list[int], since: datetime, until: datetime, points: int
) -> dict[int, list[dict[str, Any]]]:
    """For each experiment, the latest snapshot at or before each of ``points`` evenly spaced
    times in [since, until] — one query of index probes for all of them, then one fetch."""
    if not experiment_ids:
        return {}
    step = (until - since) / max(points - 1, 1)
    targets = [since + i * step for i in range(points)]
    cast = "::timestamptz" if connection.vendor == "postgresql" else ""
    table = AllocationSnapshot._meta.db_table
    pairs = ", ".join([f"(%s, %s{cast})"] * (len(experiment_ids) * len(targets)))
    sql = (
        f"SELECT DISTINCT (SELECT s.id FROM {table} s WHERE s.experiment_id = t.column1 "
        f"AND s.created_at <= t.column2 AND s.created_at >= %s{cast} ORDER BY s.created_at DESC, s.id DESC LIMIT 1) "
        f"FROM (VALUES {pairs}) AS t"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params: list[Any] = [adapt(since)]
    for experiment_id in experiment_ids:
        for target in targets:
            params += [experiment_id, adapt(target)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall() if row[0] is not None]
    series: dict[int, list[dict[str, Any]]] = {}
    for point in _snapshot_rows(ids):
        series.setdefault(point.pop("experiment_id"), []).append(point)
    return series


def served_allocation(point: dict[str, Any]) -> list[float | None]:
    """What decide served at a snapshot (snapshots from before it was recorded: the policy's)."""
    effective = point.get("effective")
    return effective if effective is not None else point["allocation"]


def _live_point(state: dict[str, Any], now: datetime) -> dict[str, Any]:
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

    Both are estimated from the most recent ``LAG_SAMPLE`` rows so the cost stays bounded
    however busy the experiment is. Decisions younger than a minute are not counted as
    waiting yet.
    """
    rows = (
        Reward.objects.filter(experiment_id=experiment_id, decided_at__isnull=False)
        .order_by("-received_at")
        .values_list("received_at", "decided_at")[:LAG_SAMPLE]
    )
    lags = [round((received - decided).total_seconds(), 3) for received, decided in rows if decided is not None]
    decision_ids = list(
        Decision.objects.filter(experiment_id=experiment_id, created_at__lte=now - timedelta(minutes=1))
        .order_by("-created_at")
        .values_list("decision_id", flat=True)[:LAG_SAMPLE]
    )
    if not decision_ids:
        return lags, None
    rewarded = set(Reward.objects.filter(decision_id__in=decision_ids).values_list("decision_id", flat=True))
    return lags, 1 - len(rewarded) / len(decision_ids)


def timeline(experiment: Experiment, limit: int = 100) -> list[dict[str, Any]]:
    """The experiment's action history, newest first, with the evidence of each entry."""
    return [
        {
            "time": _iso(entry.created_at),
            "actor": entry.actor,
            "kind": entry.kind,
            "reason": entry.reason,
            "before": entry.before,
            "after": entry.after,
            "evidence": entry.evidence,
        }
        for entry in AuditEntry.objects.filter(experiment=experiment).order_by("-created_at", "-id")[:limit]
    ]


def experiment_dashboard(experiment: Experiment, range_key: str = "all") -> dict[str, Any]:
    """Everything the detail page shows: figures, arms table, timeline, freshness."""
    now = timezone.now()
    seconds = RANGES.get(range_key)
    since = now - timedelta(seconds=seconds) if seconds else None
    state = experiment_state(experiment)
    labels = [f"#{a['position']} {a['model']['name']}:{a['model']['version']}" for a in state["arms"]]
    points = [*snapshot_series(experiment.pk, since), _live_point(state, now)]
    times = [_iso(p["created_at"]) for p in points]
    history = timeline(experiment)
    events = [
        {
            "time": item["time"],
            "kind": item["kind"],
            "text": f"{item['kind']} by {item['actor']}: {item['reason']}".rstrip(": "),
        }
        for item in history
        if since is None or item["time"] >= _iso(since)
    ]
    belief = state.pop("belief")
    lags, waiting = reward_lag(experiment.pk, now)
    cumulative = [float(sum(p["reward_sums"])) for p in points]
    regret = [charts.estimated_regret(p["reward_counts"], p["means"]) for p in points]
    return {
        "generated_at": _iso(now),
        "policy_updated_at": _iso(state["updated_at"]),
        "has_data": any(arm["served"] or arm["rewards"] for arm in state["arms"]),
        "state": {**state, "updated_at": _iso(state["updated_at"])},
        "labels": labels,
        "figures": {
            "allocation": charts.allocation_figure(times, [p["allocation"] for p in points], labels, events),
            "means": charts.means_figure(
                times, [p["means"] for p in points], [p["lower"] for p in points], [p["upper"] for p in points], labels
            ),
            "cumulative": charts.cumulative_figure(times, cumulative, regret),
            "belief": charts.belief_figure(belief, labels),
            "probability_best": charts.probability_best_figure([a["probability_best"] for a in state["arms"]], labels),
            "traffic": charts.traffic_figure(times, [p["served"] for p in points], labels),
            "lag": charts.lag_figure(lags, waiting),
        },
        "timeline": history,
        "waiting_share": waiting,
    }


def control_panel(experiment: Experiment) -> dict[str, Any]:
    """What the detail page's control cards show: arms, the override, requests, deliveries."""
    return {
        "arms": list(experiment.arms.select_related("model_version").order_by("position")),
        "override": override_active(experiment.pk),
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
    }


# --------------------------------------------------------------------------- overview
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
        times = [_iso(p["created_at"]) for p in points] + [_iso(now)]
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


# --------------------------------------------------------------------------- models & audit
def model_detail(model: ModelVersion) -> dict[str, Any]:
    """The experiments a model version is in, and its served share over time in each."""
    arms = list(Arm.objects.filter(model_version=model).select_related("experiment").order_by("experiment__slug"))
    series = []
    for arm in arms:
        points = snapshot_series(arm.experiment_id, None)
        series.append(
            {
                "experiment": arm.experiment.slug,
                "times": [_iso(p["created_at"]) for p in points],
                "shares": [
                    p["allocation"][arm.position] if arm.position < len(p["allocation"]) else None for p in points
                ],
            }
        )
    return {"arms": arms, "figure": charts.served_share_figure(series)}


def audit_entries(
    *,
    experiment: str = "",
    actor: str = "",
    kind: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Audit entries filtered by experiment slug, actor, kind prefix and time range."""
    entries = AuditEntry.objects.select_related("experiment").order_by("-created_at", "-id")
    if experiment:
        entries = entries.filter(experiment__slug=experiment)
    if actor:
        entries = entries.filter(actor=actor)
    if kind:
        entries = entries.filter(kind__startswith=kind)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lte=until)
    return entries


def audit_filter_choices() -> dict[str, list[str]]:
    return {
        "experiments": list(Experiment.objects.order_by("slug").values_list("slug", flat=True)),
        "actors": list(AuditEntry.objects.order_by("actor").values_list("actor", flat=True).distinct()),
        "kinds": list(AuditEntry.objects.order_by("kind").values_list("kind", flat=True).distinct()),
    }
