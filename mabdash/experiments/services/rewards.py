"""Recording rewards: validate, attribute, insert idempotently, then request learning.

Each item gets an outcome: ``accepted`` (stored now), ``duplicate`` (this event id was
already stored with the same payload), ``conflict`` (stored earlier with a different
payload — the earlier one stands) or ``rejected`` (with the field and the reason). Bad
items never cost good ones. Everything accepted is committed before the caller answers;
learning is requested after the commit and never blocks or fails the request.

Validation is plain Python rather than a DRF serializer per item: a batch holds up to
10,000 items and per-item serializers would cost more than everything else together.
"""

from __future__ import annotations

import contextlib
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from mabdash.accounts.authentication import KeyPrincipal
from mabdash.errors import NotFound
from mabdash.experiments import decision_ids
from mabdash.experiments.models import Experiment, Reward
from mabdash.experiments.services.scheduling import learning_request
from mabdash.experiments.serving import ServingEntry, serving_cache

EVENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
FIELDS = frozenset({"event_id", "decision_id", "experiment", "arm", "value", "observed_at"})
REAL_LIMIT = 1e15


@dataclass
class RewardOutcome:
    """The outcome of one item."""

    index: int
    status: str
    event_id: str | None = None
    errors: dict[str, list[str]] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "event_id": self.event_id, "status": self.status}
        if self.errors:
            data["errors"] = self.errors
        return data


@dataclass
class _Item:
    index: int
    event_id: str
    generated_id: bool
    value: float
    decision_id: str | None = None
    token: decision_ids.DecisionToken | None = None
    slug: str | None = None
    position: int | None = None
    observed_at: datetime | None = None
    experiment: ServingEntry | None = None
    arm_id: int | None = None
    learn: bool = True
    decided_at: datetime | None = None


def _reject(index: int, event_id: Any, field_name: str, message: str) -> RewardOutcome:
    return RewardOutcome(
        index=index,
        status="rejected",
        event_id=event_id if isinstance(event_id, str) else None,
        errors={field_name: [message]},
    )


def _parse(index: int, raw: Any) -> _Item | RewardOutcome:
    """Check one item's shape and types (no database)."""
    if not isinstance(raw, dict):
        return _reject(index, None, "reward", "must be a JSON object")
    event_id = raw.get("event_id")
    unknown = set(raw) - FIELDS
    if unknown:
        return _reject(index, event_id, sorted(unknown)[0], f"unknown field; expected {', '.join(sorted(FIELDS))}")
    if event_id is None:
        event_id, generated = uuid.uuid4().hex, True
    elif not isinstance(event_id, str) or not EVENT_ID_PATTERN.match(event_id):
        return _reject(index, event_id, "event_id", "1-128 characters from A-Z a-z 0-9 . _ : -")
    else:
        generated = False
    value = raw.get("value")
    if value is None:
        return _reject(index, event_id, "value", "required")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _reject(index, event_id, "value", "must be a number")
    value = float(value)
    if not math.isfinite(value):
        return _reject(index, event_id, "value", "must be finite")
    item = _Item(index=index, event_id=event_id, generated_id=generated, value=value)
    decision_id = raw.get("decision_id")
    if decision_id is not None:
        if not isinstance(decision_id, str):
            return _reject(index, event_id, "decision_id", "must be a string")
        try:
            item.token = decision_ids.decode(decision_id)
        except decision_ids.InvalidDecisionId as error:
            return _reject(index, event_id, "decision_id", str(error))
        item.decision_id = decision_id
    slug = raw.get("experiment")
    if slug is not None and not isinstance(slug, str):
        return _reject(index, event_id, "experiment", "must be an experiment slug (a string)")
    item.slug = slug
    arm = raw.get("arm")
    if arm is not None and (isinstance(arm, bool) or not isinstance(arm, int) or arm < 0):
        return _reject(index, event_id, "arm", "must be a non-negative integer (the arm position decide returned)")
    item.position = arm
    if item.token is None and (slug is None or arm is None):
        return _reject(index, event_id, "decision_id", "give a decision_id, or both experiment and arm")
    observed_at = raw.get("observed_at")
    if observed_at is not None:
        parsed = parse_datetime(observed_at) if isinstance(observed_at, str) else None
        if parsed is None:
            return _reject(index, event_id, "observed_at", "must be an ISO 8601 date-time")
        item.observed_at = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return item


def _value_error(kind: str, value: float) -> str | None:
    if kind == Experiment.RewardKind.BINARY and value not in (0.0, 1.0):
        return "must be 0 or 1 for this experiment (binary rewards)"
    if kind == Experiment.RewardKind.BOUNDED and not 0.0 <= value <= 1.0:
        return "must be in [0, 1] for this experiment (bounded rewards)"
    if abs(value) > REAL_LIMIT:
        return f"must be within ±{REAL_LIMIT:g}"
    return None


def _attribute(items: list[_Item], principal: Any, now: datetime) -> dict[int, RewardOutcome]:
    """Resolve experiments and arms, check scope, range and lateness; return rejections.

    Experiments and arms come from the web process's serving cache (no query on the hot
    path); an arm the cache does not know yet (added a moment ago) reloads the entry.
    """
    by_id: dict[int, ServingEntry | None] = {}
    by_slug: dict[str, ServingEntry | None] = {}

    def lookup(table: dict, key: Any, load) -> ServingEntry | None:
        if key not in table:
            try:
                table[key] = load(key)
            except NotFound:
                table[key] = None
        return table[key]

    rejected: dict[int, RewardOutcome] = {}

    def reject(item: _Item, field: str, message: str) -> None:
        rejected[item.index] = _reject(item.index, item.event_id, field, message)

    for item in items:
        if item.token:
            experiment = lookup(by_id, item.token.experiment_id, serving_cache.get_by_id)
            if experiment is None:
                reject(item, "decision_id", "its experiment no longer exists")
                continue
            if item.slug is not None and item.slug != experiment.slug:
                reject(item, "experiment", f"does not match the decision's experiment {experiment.slug!r}")
                continue
            if item.position is not None and item.position != item.token.position:
                reject(item, "arm", f"does not match the decision's arm {item.token.position}")
                continue
            position = item.token.position
            item.decided_at = item.token.issued_at
            item.learn = now - item.decided_at <= timedelta(seconds=experiment.reward_window_seconds)
        else:
            experiment = lookup(by_slug, item.slug, serving_cache.get)
            if experiment is None:
                reject(item, "experiment", f"no experiment {item.slug!r}")
                continue
            position = item.position
        if isinstance(principal, KeyPrincipal) and not principal.allows_experiment(experiment.pk):
            reject(item, "experiment", f"this API key is not allowed on experiment {experiment.slug!r}")
            continue
        arm_id = experiment.arm_id(position)
        if arm_id is None and position < 10_000:
            experiment = serving_cache.reload(experiment.slug)
            by_id[experiment.pk] = by_slug[experiment.slug] = experiment
            arm_id = experiment.arm_id(position)
        if arm_id is None:
            reject(item, "arm", f"experiment has no arm {position}")
            continue
        problem = _value_error(experiment.reward_kind, item.value)
        if problem:
            reject(item, "value", problem)
            continue
        item.experiment, item.arm_id = experiment, arm_id
    return rejected


_COLUMNS = "event_id, experiment_id, arm_id, decision_id, value, decided_at, observed_at, received_at, learn"


def _insert(items: list[_Item], now: datetime) -> set[str]:
    """Insert, skipping event ids already stored; return the ids this call inserted."""
    table = Reward._meta.db_table
    inserted: set[str] = set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the whole batch: arrays in, the inserted ids out.
            cursor.execute(
                f"INSERT INTO {table} ({_COLUMNS}) "
                "SELECT e, x, a, d, v, da, o, %s::timestamptz, l FROM unnest(%s::text[], %s::bigint[], "
                "%s::bigint[], %s::text[], %s::float8[], %s::timestamptz[], %s::timestamptz[], %s::bool[]) "
                "AS t(e, x, a, d, v, da, o, l) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                [
                    now,
                    [i.event_id for i in items],
                    [i.experiment.pk for i in items],
                    [i.arm_id for i in items],
                    [i.decision_id for i in items],
                    [i.value for i in items],
                    [i.decided_at for i in items],
                    [i.observed_at for i in items],
                    [i.learn for i in items],
                ],
            )
            return {row[0] for row in cursor.fetchall()}
        adapt = connection.ops.adapt_datetimefield_value
        for start in range(0, len(items), 3000):
            chunk = items[start : start + 3000]
            placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for i in chunk:
                params += [
                    i.event_id,
                    i.experiment.pk,
                    i.arm_id,
                    i.decision_id,
                    i.value,
                    adapt(i.decided_at),
                    adapt(i.observed_at),
                    adapt(now),
                    i.learn,
                ]
            cursor.execute(
                f"INSERT INTO {table} ({_COLUMNS}) VALUES {placeholders} "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                params,
            )
            inserted.update(row[0] for row in cursor.fetchall())
    return inserted


def _classify_existing(items: list[_Item]) -> dict[int, RewardOutcome]:
    """Outcomes for items whose event id was already stored: duplicate or conflict."""
    stored = {
        row[0]: row[1:]
        for row in Reward.objects.filter(event_id__in=[i.event_id for i in items]).values_list(
            "event_id", "experiment_id", "arm_id", "decision_id", "value"
        )
    }
    outcomes = {}
    for item in items:
        same = stored.get(item.event_id) == (item.experiment.pk, item.arm_id, item.decision_id, item.value)
        if same:
            outcomes[item.index] = RewardOutcome(item.index, "duplicate", item.event_id)
        else:
            outcomes[item.index] = _reject(
                item.index, item.event_id, "event_id", "already recorded with a different payload"
            )
            outcomes[item.index].status = "conflict"
    return outcomes


def _batch_transaction():
    """What makes the insert all-or-nothing.

    On PostgreSQL ``_insert`` is one statement, atomic by itself: in autocommit it is
    committed (durably) when it returns, saving the BEGIN and COMMIT round trips. An item
    that conflicts with an uncommitted insert of the same event id waits for it, so the
    lookup of stored rows that follows sees every conflicting row. The chunked inserts
    elsewhere need a transaction. ``on_commit`` hooks run at once in autocommit, or when an
    enclosing transaction commits.
    """
    return contextlib.nullcontext() if connection.vendor == "postgresql" else transaction.atomic()


def rewards_record(raw_items: list[Any], principal: Any) -> list[RewardOutcome]:
    """Record a batch of rewards; one outcome per item, in input order.

    Accepted rewards are committed when this returns. Learning is requested on commit.
    """
    now = timezone.now()
    outcomes: dict[int, RewardOutcome] = {}
    items: list[_Item] = []
    for index, raw in enumerate(raw_items):
        parsed = _parse(index, raw)
        if isinstance(parsed, RewardOutcome):
            outcomes[index] = parsed
        else:
            items.append(parsed)
    if items:
        outcomes.update(_attribute(items, principal, now))
        items = [item for item in items if item.index not in outcomes]
    # The same event id twice in one batch: the first occurrence is the one recorded.
    first: dict[str, _Item] = {}
    repeats: list[_Item] = []
    for item in items:
        if item.event_id in first:
            repeats.append(item)
        else:
            first[item.event_id] = item
    unique = list(first.values())
    if unique:
        with _batch_transaction():
            inserted = _insert(unique, now)
            existing = [item for item in unique if item.event_id not in inserted]
            outcomes.update(_classify_existing(existing + repeats))
            learned = {item.experiment.pk for item in unique if item.event_id in inserted and item.learn}
            for experiment_id in sorted(learned):
                transaction.on_commit(lambda experiment_id=experiment_id: learning_request(experiment_id))
        for item in unique:
            if item.event_id in inserted:
                outcomes[item.index] = RewardOutcome(item.index, "accepted", item.event_id)
    return [outcomes[index] for index in range(len(raw_items))]
