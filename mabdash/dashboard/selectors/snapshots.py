"""Allocation snapshots for the charts: downsampled in the database, parsed in one call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection
from django.db.models import Max, Min
from django.utils.dateparse import parse_datetime

from mabdash.experiments.models import AllocationSnapshot

# Enough for a chart a few thousand pixels wide; every point costs decode and transfer time.
MAX_POINTS = 360


def iso(moment: datetime) -> str:
    """A UTC time as the charts want it (``…Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _latest_at(experiment_ids: list[int], targets: list[datetime], since: datetime) -> list[int]:
    """For each experiment and target time, the latest snapshot taken in [``since``, target]:
    one index probe each, in one query; the distinct ids found.

    PostgreSQL gets the (experiment, target) pairs as two arrays: converting a query with a
    placeholder per value took longer than running it. SQLite gets a VALUES list.
    """
    pairs = [(experiment_id, target) for experiment_id in experiment_ids for target in targets]
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":
        table_of_targets = "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[])"
        params: list[Any] = [[e for e, _ in pairs], [t for _, t in pairs]]
    else:
        table_of_targets = f"VALUES {', '.join(['(%s, %s)'] * len(pairs))}"
        params = [value for e, t in pairs for value in (e, adapt(t))]
    sql = (
        f"WITH t(experiment_id, target) AS ({table_of_targets}) "
        f"SELECT DISTINCT (SELECT s.id FROM {AllocationSnapshot._meta.db_table} s "
        "WHERE s.experiment_id = t.experiment_id AND s.created_at <= t.target AND s.created_at >= %s "
        "ORDER BY s.created_at DESC, s.id DESC LIMIT 1) FROM t"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, adapt(since)])
        return [row[0] for row in cursor.fetchall() if row[0] is not None]


def _snapshot_ids(experiment_id: int, since: datetime | None, max_points: int) -> list[int]:
    """Ids of at most ``max_points`` snapshots since ``since``, spread evenly over time.

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
    return _latest_at([experiment_id], targets, bounds["first"])


def snapshot_series(experiment_id: int, since: datetime | None, max_points: int = MAX_POINTS) -> list[dict[str, Any]]:
    """Allocation snapshots since ``since`` (all if None), downsampled in the database.

    The ``series`` texts are joined and parsed in one ``orjson.loads`` call.
    """
    points = _snapshot_rows(_snapshot_ids(experiment_id, since, max_points), since)
    for point in points:
        del point["experiment_id"]
    return points


def _snapshot_rows(ids: list[int], since: datetime | None, until: datetime | None = None) -> list[dict[str, Any]]:
    """Snapshots by id, oldest first, their series parsed (one ``orjson.loads`` for all).

    A chart of a time range passes it, so that PostgreSQL reads only that range's months; the
    whole history passes none (a range that prunes nothing only adds a condition to plan).
    """
    if not ids:
        return []
    adapt = connection.ops.adapt_datetimefield_value
    where = [f"id IN ({', '.join(['%s'] * len(ids))})"]
    params: list[Any] = list(ids)
    if since is not None:
        where.append("created_at >= %s")
        params.append(adapt(since))
    if until is not None:
        where.append("created_at <= %s")
        params.append(adapt(until))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT experiment_id, created_at, policy_version, series FROM {AllocationSnapshot._meta.db_table} "
            f"WHERE {' AND '.join(where)} ORDER BY experiment_id, created_at, id",
            params,
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
    ids = _latest_at(experiment_ids, targets, since)
    series: dict[int, list[dict[str, Any]]] = {}
    for point in _snapshot_rows(ids, since, until):
        series.setdefault(point.pop("experiment_id"), []).append(point)
    return series


def served_allocation(point: dict[str, Any]) -> list[float | None]:
    """What decide served at a snapshot (snapshots from before it was recorded: the policy's)."""
    effective = point.get("effective")
    return effective if effective is not None else point["allocation"]
