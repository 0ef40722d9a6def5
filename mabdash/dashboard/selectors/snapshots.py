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
